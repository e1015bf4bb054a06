"""Decoder heads under every method: an example scores the same alone as inside a padded batch.

Prompt tuning and p-tuning hand the model input embeddings (virtual tokens first) instead of input
ids; a head that looked for the last token that is not the pad token in input_ids then read a
padding token. And a tokenizer that pads on the left puts the pads between the virtual tokens (or
prefix keys) and the text, so rotary distances, and gpt2's absolute positions, change with the
batch: `load_tokenizer` pads on the right whatever the model's tokenizer says. Each test below scores
short examples alone and inside a batch padded to a long one, with every method a decoder family
allows, and requires the same logits. Real peft and transformers on tiny random-weight Llama and
GPT-2 models that use SmolLM2's real tokenizer, saved padding on the left as several decoder
families' tokenizers do (SmolLM2's pads on the right, and so do the other tests' models).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import torch

from peftbench.core.spec import ModelRef, ResourceRequest, TaskSpec, TrainingSettings
from peftbench.methods import METHODS
from peftbench.models.families import FAMILY_TRAITS
from peftbench.models.loading import load_tokenizer
from peftbench.tasks import TASK_CATALOG, TASK_TYPES
from tests.conftest import smollm2_gguf
from tests.test_multiple_choice import commonsense_qa
from tests.test_token_classification import ner

PROMPT_LEARNING = {"prompt_tuning", "p_tuning", "prefix_tuning"}
SETTINGS = TrainingSettings(max_length=64, max_train_samples=6, max_eval_samples=6)
SAME = {"atol": 1e-5, "rtol": 1e-5}  # alone vs batched: only float summation order may differ


def padding_left(tokenizer_folder: Path) -> Path:
    """`tokenizer_folder` with its saved tokenizer set to pad on the left, as several families' are."""
    config = tokenizer_folder / "tokenizer_config.json"
    config.write_text(json.dumps(json.loads(config.read_text()) | {"padding_side": "left"}))
    return tokenizer_folder


@pytest.fixture(scope="module")
def tiny_gpt2(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-layer GPT-2 (random weights, seeded; it has biases, so BitFit applies) with SmolLM2's
    tokenizer, saved padding on the left."""
    from transformers import AutoTokenizer, GPT2Config, GPT2LMHeadModel

    folder, file = smollm2_gguf()
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=file)
    config = GPT2Config(
        vocab_size=len(tokenizer), n_embd=32, n_layer=2, n_head=4, n_positions=256,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
    )  # fmt: skip
    torch.manual_seed(0)
    out = tmp_path_factory.mktemp("tiny-gpt2")
    GPT2LMHeadModel(config).save_pretrained(out)
    tokenizer.save_pretrained(out)
    return padding_left(out)


@pytest.fixture(scope="module")
def decoders(tiny_decoder: Path, tiny_gpt2: Path, tmp_path_factory: pytest.TempPathFactory) -> list[ModelRef]:
    """The tiny Llama (a copy whose tokenizer pads on the left) and the tiny GPT-2."""
    llama = shutil.copytree(tiny_decoder, tmp_path_factory.mktemp("tiny-llama-left") / "model")
    return [
        ModelRef(name="tiny-llama", source=str(padding_left(llama)), family="llama"),
        ModelRef(name="tiny-gpt2", source=str(tiny_gpt2), family="gpt2"),
    ]


def test_the_tokenizer_pads_on_the_right_whatever_the_model_says(decoders: list[ModelRef]):
    from transformers import AutoTokenizer

    for ref in decoders:
        assert AutoTokenizer.from_pretrained(ref.source).padding_side == "left"  # as saved
        tokenizer = load_tokenizer(ref)
        assert tokenizer.padding_side == "right"
        batch = tokenizer(["Short.", "A longer sentence than that."], padding=True)
        assert batch["attention_mask"][0][0] == 1 and batch["attention_mask"][0][-1] == 0


def allowed_methods(ref: ModelRef, task: TaskSpec) -> list[str]:
    """The methods the planner lets this decoder train on this task on CPU."""
    traits = FAMILY_TRAITS[ref.family]
    allowed = []
    for name, method in METHODS.items():
        params = method.Params.model_validate({})
        refused = method.unsupported_reason(traits, params, ResourceRequest()) or TASK_TYPES[
            task.type
        ].unsupported_reason(task, traits, method.traits)
        if refused is None:
            allowed.append(name)
    return allowed


def prepared(ref: ModelRef, task: TaskSpec, method: str) -> tuple[Any, Any]:
    """(model with the method applied and its trainable weights moved off their start, task data)."""
    tokenizer = load_tokenizer(ref)
    task_type = TASK_TYPES[task.type]
    data = task_type.prepare_data(task, tokenizer, SETTINGS)
    chosen = METHODS[method]
    params = chosen.Params.model_validate({})
    torch.manual_seed(0)
    loaded = task_type.load_model(ref, task, tokenizer, **chosen.loading_options(params))
    model = chosen.prepare(loaded, params)
    with torch.no_grad():  # a trained prompt, prefix or adapter, not the near-identity it starts as
        for weight in model.parameters():
            if weight.requires_grad:
                weight.add_(torch.randn_like(weight) * 0.5)
    return model.eval(), data


def alone_and_batched(model: Any, collator: Any, examples: list[dict[str, Any]]) -> list[tuple[Any, Any]]:
    """Each example's logits scored alone and inside one batch of all `examples` (padded to the longest)."""
    with torch.no_grad():
        batched = model(**collator(examples)).logits
        return [(model(**collator([e])).logits[0], batched[i]) for i, e in enumerate(examples)]


def shortest_and_longest(split: Any, count: int = 3) -> list[dict[str, Any]]:
    """A few short examples and the split's longest, so that the short ones get padding."""
    by_length = sorted(range(len(split)), key=lambda i: token_count(split[i]))
    rows = [split[i] for i in (*by_length[: count - 1], by_length[-1])]
    assert token_count(rows[0]) < token_count(rows[-1])
    return rows


def token_count(row: dict[str, Any]) -> int:
    """An example's length: its tokens, or its longest choice's (multiple choice: one row per choice)."""
    ids = row["input_ids"]
    return max(len(choice) for choice in ids) if isinstance(ids[0], list) else len(ids)


def scored_alike_under_every_method(task: TaskSpec, refs: list[ModelRef]) -> set[str]:
    """Requires each example's logits alone == inside a padded batch under every allowed method: those."""
    tried = set()
    for ref in refs:
        for method in allowed_methods(ref, task):
            model, data = prepared(ref, task, method)
            for alone, batched in alone_and_batched(model, data.collator, shortest_and_longest(data.test)):
                torch.testing.assert_close(alone, batched, **SAME, msg=f"{ref.name} {method}")
            tried.add(method)
    return tried


def test_classification_reads_the_last_real_token_under_every_method(decoders: list[ModelRef]):
    tried = scored_alike_under_every_method(TASK_CATALOG["movie_sentiment"], decoders)
    assert PROMPT_LEARNING | {"lora", "ia3", "full", "bitfit"} <= tried


def test_decoder_classification_loss_is_cross_entropy_on_the_pooled_logits(decoders: list[ModelRef]):
    model, data = prepared(decoders[0], TASK_CATALOG["movie_sentiment"], "prompt_tuning")
    batch = data.collator([data.train[i] for i in range(4)])
    with torch.no_grad():
        output = model(**batch)
    torch.testing.assert_close(output.loss, torch.nn.functional.cross_entropy(output.logits, batch["labels"]))


def test_token_classification_tags_each_token_alike_alone_and_batched(decoders: list[ModelRef]):
    """Also under prompt tuning and p-tuning, whose virtual tokens come first: once a crash (one tag
    per virtual token too, against one label per text token). Each row's tokens are found by the
    batch's attention mask, on whichever side the padding went."""
    task = ner()
    tried = set()
    for ref in decoders:
        for method in allowed_methods(ref, task):
            model, data = prepared(ref, task, method)
            examples = shortest_and_longest(data.test)
            scored = alone_and_batched(model, data.collator, examples)
            batch = data.collator(examples)
            for row, (alone, batched) in enumerate(scored):
                text = batch["attention_mask"][row].bool()
                torch.testing.assert_close(alone, batched[text], **SAME, msg=f"{ref.name} {method}")
            with torch.no_grad():
                output = model(**batch)
            assert output.logits.shape[:2] == batch["labels"].shape
            if method != "adalora":  # AdaLoRA adds its orthogonality penalty to the loss
                flat_logits, flat_labels = output.logits.flatten(0, 1), batch["labels"].flatten()
                expected = torch.nn.functional.cross_entropy(flat_logits, flat_labels)
                torch.testing.assert_close(output.loss, expected)
            tried.add(method)
    assert PROMPT_LEARNING | {"lora", "full"} <= tried


@pytest.mark.parametrize("scoring", ["head", "loglikelihood"])
def test_multiple_choice_scores_each_choice_alike_alone_and_batched(scoring: str, decoders: list[ModelRef]):
    tried = scored_alike_under_every_method(commonsense_qa(scoring=scoring), decoders)
    assert {"lora", "full"} <= tried
    if scoring == "loglikelihood":
        assert tried >= PROMPT_LEARNING


@pytest.mark.slow
@pytest.mark.parametrize("task_name", ["movie_sentiment", "ner"])
def test_prompt_tuning_a_decoder_trains_and_evaluates_end_to_end(
    task_name: str, decoders: list[ModelRef], tmp_path: Path
):
    """The Trainer keeps only the dataset columns the model's `forward` names: the heads name them all."""
    from peftbench.core.spec import RunSpec
    from peftbench.run.one import run_one

    task = ner() if task_name == "ner" else TASK_CATALOG[task_name]
    spec = RunSpec(
        sweep="t",
        model=decoders[0],
        task=task,
        method="prompt_tuning",
        label="prompt_tuning",
        params=METHODS["prompt_tuning"].Params().model_dump(),
        training=SETTINGS.model_copy(update={"max_steps": 2, "batch_size": 4, "eval_batch_size": 4}),
        seed=0,
    )
    result = run_one(spec, tmp_path)
    assert result.status == "success", result.error
    assert result.test
