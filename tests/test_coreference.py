"""The coreference task type: its problems, scores of the fixture's gold, the span model under each
method, a run.

Data: tests/fixtures/coref_demo (English documents written for these tests, README there). Training
uses a 2-layer BERT built from a config with MiniLM-L6's real tokenizer: the mechanics are the real
ones, at a size that steps in milliseconds on a shared 2-core machine.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import yaml

from peftbench.core.directions import COREF_METRICS
from peftbench.core.errors import RunCannotStart
from peftbench.core.paths import RunPaths
from peftbench.core.predictions import read_predictions
from peftbench.core.spec import ModelRef, RunSpec, TaskSpec, TrainingSettings
from peftbench.methods import METHODS
from peftbench.models.catalog import MODEL_CATALOG
from peftbench.models.heads.coreference import HEAD
from peftbench.models.loading import load_tokenizer
from peftbench.run.one import run_one
from peftbench.tasks import TASK_CATALOG, TASK_TYPES
from tests.conftest import save_tiny_bert
from tests.coreference_fixture import coref, rows
from tests.method_training import adam_steps

TASK = TASK_TYPES["coreference"]
SETTINGS = TrainingSettings(max_length=64, batch_size=8, eval_batch_size=8)


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """The tiny BERT's matrices are too small to gain from a second thread; on a busy machine the two
    threads' waiting on each other made 12 steps take 17 s instead of 1 s. Restored afterwards."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def tokenizer():
    return load_tokenizer(MODEL_CATALOG["minilm-l6"])


@pytest.fixture(scope="module")
def prepared(tokenizer):
    """The fixture prepared once: (data, one batch of all 8 training documents)."""
    data = TASK.prepare_data(coref(), tokenizer, SETTINGS)
    return data, data.collator([data.train[i] for i in range(len(data.train))])


@pytest.fixture(scope="module")
def tiny_bert(tmp_path_factory: pytest.TempPathFactory, tokenizer) -> ModelRef:
    """A 2-layer BERT (random weights, seeded) saved with MiniLM-L6's tokenizer: family `bert`."""
    return save_tiny_bert(tmp_path_factory.mktemp("tiny-bert"), tokenizer)


@pytest.fixture(scope="module")
def tiny_electra(tmp_path_factory: pytest.TempPathFactory, tokenizer) -> ModelRef:
    """A 2-layer ELECTRA (BERTić's family; its embeddings narrower than its hidden states)."""
    from transformers import ElectraConfig, ElectraModel

    config = ElectraConfig(
        vocab_size=len(tokenizer),
        embedding_size=16,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=128,
    )
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("tiny-electra")
    ElectraModel(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return ModelRef(name="tiny-electra", source=str(folder), family="electra")


def test_problems_are_found_before_anything_runs():
    def keys(task: TaskSpec) -> list[str]:
        return [key for key, *_ in TASK.problems(task)]

    assert keys(coref()) == []
    assert keys(coref(metric="mcc")) == ["metric"]
    assert keys(coref(text_columns=["sentences", "clusters"])) == ["text_columns"]


def test_gold_links_score_one_and_no_links_score_zero(prepared):
    """compute_metrics on the fixture's own gold: links to each mention's previous mention give every
    metric 1; no links give 0."""
    _, batch = prepared
    labels = batch["labels"].numpy()
    links = torch.full(labels.shape, -1.0)
    for row, entities in enumerate(labels):
        last: dict[int, int] = {}
        for index, entity in enumerate(entities):
            if entity > 0:
                if entity in last:
                    links[row, index] = last[entity]
                last[entity] = index
    perfect = TASK.compute_metrics(coref(), links.numpy(), labels)
    assert set(perfect) == set(COREF_METRICS) and all(v == pytest.approx(1.0) for v in perfect.values())
    assert TASK.compute_metrics(coref(), torch.full(labels.shape, -1.0).numpy(), labels)["conll_f1"] == 0.0


def one_batch(ref: ModelRef, prepared):
    """A fresh model (the tiny BERT shares MiniLM's tokenizer, so the prepared batch fits it)."""
    torch.manual_seed(0)
    return TASK.load_model(ref, coref(), load_tokenizer(ref)), prepared[1]


@pytest.mark.parametrize(("method", "params", "lr"), [("full", {}, 1e-3), ("lora", {"r": 8}, 1e-2)])
def test_the_span_model_learns_under_full_and_lora(
    tiny_bert: ModelRef, prepared, method: str, params: dict, lr: float
):
    loaded, batch = one_batch(tiny_bert, prepared)
    chosen = METHODS[method]
    model = chosen.prepare(loaded, chosen.Params.model_validate(params))
    _, losses, changed = adam_steps(model, batch, lr, steps=12)
    assert losses[-1] < 0.7 * losses[0], losses
    assert any(f"{HEAD}." in name for name in changed)  # the head always trains
    if method == "lora":
        assert any(".lora_A." in name for name in changed)
        assert not any(".lora_" not in n and ".modules_to_save." not in n for n in changed)  # base frozen


def test_full_fine_tuning_fits_the_training_documents(tiny_bert: ModelRef, prepared):
    """More than a falling loss: after 100 steps on the 8 training documents the predicted clusters
    match most of their gold ones (CoNLL F1 on them, from 0 before)."""
    loaded, batch = one_batch(tiny_bert, prepared)
    model = METHODS["full"].prepare(loaded, METHODS["full"].Params())

    def conll_f1() -> float:
        model.eval()
        with torch.no_grad():
            links = model(**{k: v for k, v in batch.items() if k != "labels"}).logits
        model.train()
        return TASK.compute_metrics(coref(), links.numpy(), batch["labels"].numpy())["conll_f1"]

    assert conll_f1() == 0.0
    adam_steps(model, batch, 1e-3, steps=100)
    fitted = conll_f1()
    assert fitted > 0.8


@pytest.mark.parametrize(("method", "params"), [("bitfit", {}), ("prompt_tuning", {"num_virtual_tokens": 4})])
def test_bitfit_and_prompt_tuning_build_and_step(tiny_bert: ModelRef, prepared, method: str, params: dict):
    loaded, batch = one_batch(tiny_bert, prepared)
    chosen = METHODS[method]
    model = chosen.prepare(loaded, chosen.Params.model_validate(params))
    _, losses, changed = adam_steps(model, batch, 1e-2, steps=2)
    assert all(torch.isfinite(torch.tensor(losses)))
    assert any(f"{HEAD}." in name for name in changed)
    if method == "bitfit":
        assert all(n.endswith(".bias") or n.startswith(f"{HEAD}.") for n in changed)
    else:
        assert any("prompt_encoder" in n for n in changed)


def test_run_one_writes_coref_metrics_and_each_windows_clusters(tiny_bert: ModelRef, tmp_path: Path):
    spec = RunSpec(
        sweep="t",
        model=tiny_bert,
        task=coref(),
        method="lora",
        label="lora",
        params=METHODS["lora"].Params().model_dump(),
        training=SETTINGS.model_copy(update={"max_steps": 3, "learning_rate": 1e-2}),
        seed=0,
    )
    result = run_one(spec, tmp_path)
    assert result.status == "success", result.error
    assert set(COREF_METRICS) <= set(result.test) and set(COREF_METRICS) <= set(result.validation)
    stored = json.loads(RunPaths(tmp_path).result.read_text("utf-8"))
    assert {"muc_f1", "b3_f1", "ceafe_f1", "conll_f1", "muc_recall", "ceafe_precision"} <= set(stored["test"])
    predictions = read_predictions(RunPaths(tmp_path).test_predictions)
    assert [p.id for p in predictions] == [r["doc_key"] for r in rows("test")]
    for prediction, row in zip(predictions, rows("test"), strict=True):
        words = sum(len(s) for s in row["sentences"])
        for cluster in json.loads(prediction.text):
            assert len(cluster) >= 2 and all(0 <= a <= b < words for a, b in cluster)


def test_a_catalog_corpus_nobody_fetched_says_where_to_get_it(tokenizer, tmp_path: Path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the catalog's relative data/ paths: absent here
    with pytest.raises(RunCannotStart, match=r"data/coref/senticoref/train.jsonl.*hdl.handle.net/11356/1285"):
        TASK.prepare_data(TASK_CATALOG["senticoref"], tokenizer, SETTINGS)


def test_bertics_family_trains_under_the_sweeps_lora(tiny_electra: ModelRef, prepared):
    """slovene-bertic.yaml's LoRA on ELECTRA: r 16, alpha 32, dropout 0.1, bias lora_only and peft's
    default targets (target_modules null: ELECTRA's query and value), read from the sweep itself."""
    from tests.conftest import REPO

    sweep = yaml.safe_load((REPO / "configs" / "sweeps" / "slovene-bertic.yaml").read_text(encoding="utf-8"))
    params = sweep["methods"]["lora"]
    assert params["target_modules"] is None
    loaded, batch = one_batch(tiny_electra, prepared)
    model = METHODS["lora"].prepare(loaded, METHODS["lora"].Params.model_validate(params))
    _, losses, changed = adam_steps(model, batch, 1e-3, steps=8)
    assert losses[-1] < 0.7 * losses[0], losses
    assert any(f"{HEAD}." in n for n in changed) and any(".lora_B." in n for n in changed)
    adapted = {n.split(".lora_B.")[0].rsplit(".", 1)[-1] for n in changed if ".lora_B." in n}
    assert adapted == {"query", "value"}
