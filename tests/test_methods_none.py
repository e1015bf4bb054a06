"""The untuned baseline: only the task head trains, and a model with nothing to train is only evaluated."""

from __future__ import annotations

from pathlib import Path

import torch

from peftbench.core.spec import ModelRef
from peftbench.methods import METHODS
from peftbench.models.families import FAMILY_TRAITS
from peftbench.models.loading import LoadedModel, load_tokenizer
from peftbench.run.one import run_one
from tests.conftest import demo_run
from tests.method_training import MINILM, load_base, train_a_few_steps


def test_none_trains_the_head_alone():
    trained = train_a_few_steps("none")
    assert trained.losses[-1] < trained.losses[0]
    assert trained.changed == {"classifier.weight", "classifier.bias"}
    assert METHODS["none"].trains(trained.model)


def test_a_decoder_without_a_new_head_has_nothing_to_train(tiny_decoder):
    from transformers import AutoModelForCausalLM

    loaded = LoadedModel(
        model=AutoModelForCausalLM.from_pretrained(tiny_decoder),
        source_path=str(tiny_decoder),
        head_modules=(),
        peft_task_type="CAUSAL_LM",
        traits=FAMILY_TRAITS["llama"],
    )
    model = METHODS["none"].prepare(loaded, METHODS["none"].Params())
    assert not any(p.requires_grad for p in model.parameters())
    assert not METHODS["none"].trains(model)


def test_a_run_with_nothing_to_train_skips_training_and_evaluates_the_model_as_it_is(tmp_path: Path):
    """A checkpoint that already has its classifier: `none` finds no new head, so nothing trains."""
    loaded, _ = load_base()
    with torch.no_grad():
        loaded.model.classifier.weight.normal_(generator=torch.Generator().manual_seed(1))
    loaded.model.save_pretrained(tmp_path / "with-head")
    load_tokenizer(MINILM).save_pretrained(tmp_path / "with-head")
    spec = demo_run("bitfit", "movie_sentiment", max_steps=2)
    ref = ModelRef(name="minilm-with-head", source=str(tmp_path / "with-head"), family="bert")
    spec = spec.model_copy(update={"model": ref, "method": "none", "label": "none", "params": {}})

    result = run_one(spec, tmp_path / "run")
    assert result.status == "success", result.error
    assert result.cost.trainable_params == 0 and result.cost.train_seconds == 0 and result.epochs_done == 0
    saved = METHODS["none"].load(load_base(ref)[0], tmp_path / "run" / "artifact")
    assert torch.equal(saved.classifier.weight, loaded.model.classifier.weight)  # unchanged: it never trained
