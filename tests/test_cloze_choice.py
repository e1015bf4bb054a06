"""The cloze_choice task type (ReCoRD, `slo_record`) on its hub-schema fixture: candidates, their
labels, the head's masked loss, and real training through run_one under full fine-tuning and LoRA."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from peftbench.core.paths import RunPaths
from peftbench.core.predictions import read_predictions
from peftbench.core.spec import DataSource, ModelRef, RunSpec, TaskSpec, TrainingSettings
from peftbench.methods import METHODS
from peftbench.models.catalog import MODEL_CATALOG
from peftbench.models.families import FAMILY_TRAITS
from peftbench.models.heads.candidate_choice import PADDED, candidate_loss
from peftbench.models.loading import load_for_candidate_choice, load_tokenizer
from peftbench.run.one import run_one
from peftbench.tasks import TASK_CATALOG, TASK_TYPES
from peftbench.tasks.cloze_choice import CANDIDATES, chosen_candidate_scores

FIXTURE = Path(__file__).parent / "fixtures" / "slo_record"
CLOZE = TASK_TYPES["cloze_choice"]
SETTINGS = TrainingSettings(max_length=64, batch_size=4, eval_batch_size=4)


def slo_record(**fields) -> TaskSpec:
    """The catalog entry on the fixture files (same layout, splits and columns)."""
    files = {s: str(FIXTURE / f"{s}.jsonl") for s in ("train", "validation", "test")}
    source = DataSource(files=files, layout="superglue_record")
    return TASK_CATALOG["slo_record"].model_copy(update={"source": source, **fields})


@pytest.fixture(scope="module")
def tokenizer():
    return load_tokenizer(MODEL_CATALOG["minilm-l6"])


@pytest.fixture(scope="module")
def data(tokenizer):
    return CLOZE.prepare_data(slo_record(), tokenizer, SETTINGS)


def test_candidates_are_the_distinct_entity_texts_each_labelled_by_its_em_and_f1(tokenizer, data):
    # train = the first 5 of 6 passages (DEV_AS_TEST cuts passages, before queries become rows): 7 queries
    assert len(data.train) == 7 and len(data.validation) == 1
    first = data.train[0]
    assert first[CANDIDATES] == ["Ana Novak", "Pariz", "Parizu", "Majo", "Lyon"]  # "Majo" twice in the text
    assert first["labels"][0] == [1.0, 1.0] and all(s == [0.0, 0.0] for s in first["labels"][1:])
    # Two gold texts: both exact; "Sava" twice as a gold span is one answer.
    usa = data.train[3]
    assert usa[CANDIDATES][:2] == ["Združene države Amerike", "ZDA"]
    assert usa["labels"][:2] == [[1.0, 1.0], [1.0, 1.0]]
    # The query filled with each candidate follows the passage.
    text = tokenizer.decode(first["input_ids"][4], skip_special_tokens=True)
    assert text.endswith("odpeljala v lyon. lyon je v parizu obiskala sestro.")
    assert data.test_ids[:2] == [8, 9]  # the queries' own idx
    # Capped training keeps the gold candidate first in line, evaluation every candidate.
    few = SETTINGS.model_copy(update={"max_train_samples": 2, "max_eval_samples": 1})
    capped = CLOZE.prepare_data(slo_record(max_train_choices=2), tokenizer, few)
    assert capped.train[1][CANDIDATES] == ["Ana Novak", "Lyon"]  # the gold "Lyon" is the 5th mention
    assert capped.validation[0][CANDIDATES] == data.validation[0][CANDIDATES]


def test_batches_pad_candidates_and_padded_ones_never_count(data):
    batch = data.collator([data.train[i] for i in (0, 2)])  # 5 and 6 candidates
    assert batch["input_ids"].shape[:2] == (2, 6)
    assert batch["labels"][0, 5].tolist() == [PADDED, PADDED]
    # A padded candidate scored highest is neither picked nor in the softmax.
    logits = torch.tensor([[1.0, 0.0, 0.0, 0.0, 0.0, 9.0], [0.0, 0.0, 0.0, 0.0, 2.0, 0.0]])
    assert chosen_candidate_scores(logits.numpy(), batch["labels"].numpy()) == {"em": 0.5, "f1": 0.5}
    # -log softmax of each gold (index 0) over the real candidates: 5 for the first, 6 for the second
    expected = (math.log(math.e + 4) - 1 + math.log(math.e**2 + 5)) / 2
    assert candidate_loss(logits, batch["labels"]).item() == pytest.approx(expected)


def test_problems_and_refusals():
    bad = TaskSpec(name="x", type="cloze_choice", source=DataSource(files={"train": "t.jsonl"}),
                   text_columns=["passage"], labels=["a", "b"], metric="accuracy")  # fmt: skip
    keys = sorted(key for key, *_ in CLOZE.problems(bad))
    assert keys == ["choices_column", "labels", "metric", "text_columns"]
    assert CLOZE.problems(TASK_CATALOG["slo_record"]) == []
    bert, prefix, lora = FAMILY_TRAITS["bert"], METHODS["prefix_tuning"].traits, METHODS["lora"].traits
    assert "virtual tokens" in CLOZE.unsupported_reason(slo_record(), bert, prefix)
    assert CLOZE.unsupported_reason(slo_record(), bert, lora) is None


def test_a_decoder_scores_each_candidate_the_same_alone_as_in_a_padded_batch(tiny_decoder: Path):
    """Decoders join (passage, filled query) into one text and pool the last attended token: a
    candidate's score must not depend on the other examples padded into its batch."""
    ref = ModelRef(name="tiny", source=str(tiny_decoder), family="llama")
    tokenizer = load_tokenizer(ref)
    data = CLOZE.prepare_data(slo_record(), tokenizer, SETTINGS.model_copy(update={"max_train_samples": 3}))
    torch.manual_seed(0)
    model = load_for_candidate_choice(ref, tokenizer.pad_token_id).model.eval()
    with torch.no_grad():
        both = model(**data.collator([data.train[0], data.train[2]]))  # 5 and 6 candidates
        alone = model(**data.collator([data.train[0]]))
    assert both.logits.shape == (2, 6) and torch.isfinite(both.loss)
    torch.testing.assert_close(both.logits[0, :5], alone.logits[0], rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("method", ["full", "lora"])
def test_run_one_trains_and_writes_em_and_f1(method: str, tmp_path: Path):
    spec = RunSpec(
        sweep="t",
        model=MODEL_CATALOG["minilm-l6"],
        task=slo_record(),
        method=method,
        label=method,
        params=METHODS[method].Params().model_dump(),
        # One step of two examples (up to 7 candidates each) keeps it short on a shared CPU.
        training=SETTINGS.model_copy(
            update={"max_steps": 1, "batch_size": 2, "max_length": 48, "learning_rate": 1e-3}
        ),
        seed=0,
    )
    result = run_one(spec, tmp_path)
    assert result.status == "success", result.error
    assert {"em", "f1"} <= set(result.validation) and {"em", "f1"} <= set(result.test)
    saved = json.loads(RunPaths(tmp_path).result.read_text(encoding="utf-8"))
    assert saved["test"]["em"] == result.test["em"]
    predictions = read_predictions(RunPaths(tmp_path).test_predictions)
    rows = [json.loads(line) for line in (FIXTURE / "validation.jsonl").read_text("utf-8").splitlines()]
    golds = [[a["text"] for a in row["qas"][0]["answers"]] for row in rows]
    assert [p.id for p in predictions] == [row["qas"][0]["idx"] for row in rows]
    # Every prediction is one of its passage's entities; EM is the share that is a gold text.
    assert all(p.text in row["passage"]["text"] for p, row in zip(predictions, rows, strict=True))
    hits = sum(p.text in gold for p, gold in zip(predictions, golds, strict=True))
    assert result.test["em"] == hits / len(rows)
