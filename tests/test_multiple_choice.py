"""The multiple_choice task type on hub-schema fixtures: HuCoPA (two choice columns, labels "1"/"2")
and CommonsenseQA (a struct column of choices, answerKey "A".."E"), with a trained head or scored
by log-likelihood as lm-evaluation-harness does it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from peftbench.core.errors import ConfigError
from peftbench.core.paths import RunPaths
from peftbench.core.predictions import read_predictions
from peftbench.core.spec import DataSource, RunSpec, TaskSpec, TrainingSettings
from peftbench.methods import METHODS
from peftbench.models.catalog import MODEL_CATALOG
from peftbench.models.families import FAMILY_TRAITS
from peftbench.models.loading import load_tokenizer
from peftbench.plan.loading import load_sweep
from peftbench.run.one import run_one
from peftbench.tasks import TASK_TYPES
from peftbench.tasks.base import logits_of
from peftbench.tasks.multiple_choice import encode_continuation
from tests.conftest import write_yaml

FIXTURES = Path(__file__).parent / "fixtures"
TASK = TASK_TYPES["multiple_choice"]
SETTINGS = TrainingSettings(max_length=64, batch_size=4, eval_batch_size=3)


def fixture_source(name: str) -> DataSource:
    return DataSource(files={s: str(FIXTURES / name / f"{s}.jsonl") for s in ("train", "validation", "test")})


def rows(name: str, split: str) -> list[dict]:
    return [json.loads(line) for line in (FIXTURES / name / f"{split}.jsonl").read_text("utf-8").splitlines()]


def hucopa(**fields) -> TaskSpec:
    spec = {
        "name": "hucopa",
        "type": "multiple_choice",
        "source": fixture_source("hucopa"),
        "text_columns": ["premise"],
        "choice_columns": ["choice1", "choice2"],
        "labels": ["1", "2"],
    }
    return TaskSpec(**(spec | fields))


def commonsense_qa(**fields) -> TaskSpec:
    spec = {
        "name": "commonsense_qa",
        "type": "multiple_choice",
        "source": fixture_source("commonsense_qa"),
        "text_columns": ["question"],
        "choices_column": "choices.text",
        "label_column": "answerKey",
        "labels": ["A", "B", "C", "D", "E"],
    }
    return TaskSpec(**(spec | fields))


def tiny(tiny_decoder: Path):
    from peftbench.core.spec import ModelRef

    return ModelRef(name="tiny", source=str(tiny_decoder), family="llama")


def test_problems_are_found_before_anything_runs():
    def keys(task: TaskSpec) -> list[str]:
        return [key for key, *_ in TASK.problems(task)]

    assert keys(hucopa()) == [] and keys(commonsense_qa(scoring="loglikelihood", metric="acc_norm")) == []
    assert keys(hucopa(choices_column="choices.text")) == ["choice_columns"]  # both given
    assert keys(hucopa(choice_columns=None)) == ["choice_columns"]  # neither
    assert keys(hucopa(choice_columns=["choice1"])) == ["choice_columns"]
    assert keys(hucopa(metric="acc_norm")) == ["metric"]  # needs scoring: loglikelihood
    assert keys(hucopa(metric="f1_macro")) == ["metric"]
    assert keys(hucopa(labels=["1"])) == ["labels"]
    assert keys(hucopa(prompt="{premise")) == ["prompt"]
    assert keys(hucopa(prompt="no columns")) == ["prompt"]


def test_model_and_method_fit_is_checked_in_the_sweep(tmp_path: Path):
    encoder, decoder = FAMILY_TRAITS["bert"], FAMILY_TRAITS["llama"]
    lora, prompt_tuning = METHODS["lora"].traits, METHODS["prompt_tuning"].traits
    likelihood = hucopa(scoring="loglikelihood")
    assert "decoder-only" in TASK.unsupported_reason(likelihood, encoder, lora)
    assert TASK.unsupported_reason(likelihood, decoder, prompt_tuning) is None
    assert "virtual tokens" in TASK.unsupported_reason(hucopa(), decoder, prompt_tuning)
    assert TASK.unsupported_reason(hucopa(), encoder, lora) is None
    assert "encoder or a decoder" in TASK.unsupported_reason(hucopa(), FAMILY_TRAITS["t5"], lora)

    task = likelihood.model_dump(mode="json", exclude_none=True)
    sweep = {"name": "s", "models": ["minilm-l6"], "tasks": [task], "methods": {"lora": {}}}
    with pytest.raises(ConfigError, match=r"hucopa.*cannot run on model 'minilm-l6'.*needs a decoder-only"):
        load_sweep(write_yaml(tmp_path / "s.yaml", sweep))


def test_hucopa_gold_labels_prompt_and_ids():
    tokenizer = load_tokenizer(MODEL_CATALOG["minilm-l6"])
    task = hucopa(prompt="{premise} What was the {question}?")
    data = TASK.prepare_data(task, tokenizer, SETTINGS)
    source = rows("hucopa", "test")
    assert data.test["labels"] == [int(r["label"]) - 1 for r in source]
    assert data.test_ids == [r["idx"] for r in source]
    first = data.test[0]
    assert len(first["input_ids"]) == 2  # one sequence per choice
    row = source[0]
    context = f"{row['premise']} What was the {row['question']}?"
    assert first["input_ids"][1] == tokenizer(context, row["choice2"])["input_ids"]  # (context, choice) pairs
    batch = data.collator([data.test[i] for i in range(3)])
    assert batch["input_ids"].shape[:2] == (3, 2) and batch["labels"].tolist() == data.test["labels"][:3]


def test_commonsense_qa_choices_from_a_struct_and_letter_answers():
    tokenizer = load_tokenizer(MODEL_CATALOG["minilm-l6"])
    data = TASK.prepare_data(commonsense_qa(), tokenizer, SETTINGS)
    source = rows("commonsense_qa", "validation")
    assert data.validation["labels"] == ["ABCDE".index(r["answerKey"]) for r in source]
    assert len(data.validation[0]["input_ids"]) == 5


def test_a_gold_outside_the_labels_is_named(tmp_path: Path):
    bad = rows("hucopa", "train")
    bad[3]["label"] = "3"
    for split in ("train", "validation", "test"):
        (tmp_path / f"{split}.jsonl").write_text("\n".join(json.dumps(r) for r in bad), "utf-8")
    source = DataSource(files={s: str(tmp_path / f"{s}.jsonl") for s in ("train", "validation", "test")})
    tokenizer = load_tokenizer(MODEL_CATALOG["minilm-l6"])
    with pytest.raises(ValueError, match=r"example 3: Gold value '3' .* the labels \['1', '2'\]"):
        TASK.prepare_data(hucopa(source=source), tokenizer, SETTINGS)


def test_continuations_are_split_as_lm_evaluation_harness_does(tiny_decoder: Path):
    tokenizer = load_tokenizer(tiny(tiny_decoder))
    ids, in_choice = encode_continuation(tokenizer, "The sun rose. ", "It got warm", 64)
    # The context's trailing space moves to the continuation: the whole text is tokenized as one.
    whole = tokenizer("The sun rose. It got warm", add_special_tokens=False)["input_ids"]
    context = tokenizer("The sun rose.", add_special_tokens=False)["input_ids"]
    assert ids == whole and in_choice == len(whole) - len(context)
    assert tokenizer.decode(ids[-in_choice:]) == " It got warm"
    short, kept = encode_continuation(tokenizer, "The sun rose. " * 20, "It got warm", 8)
    assert len(short) == 8 and kept == in_choice and short[-kept:] == ids[-in_choice:]


def hand_loglikelihood(lm, tokenizer, context: str, choice: str) -> float:
    """The sum of log P(choice token | everything before it), from the plain causal LM's logits."""
    context_ids = tokenizer(context, add_special_tokens=False)["input_ids"]
    whole = tokenizer(f"{context} {choice}", add_special_tokens=False)["input_ids"]
    with torch.no_grad():
        logprobs = torch.log_softmax(lm(torch.tensor([whole])).logits[0].double(), -1)
    return sum(float(logprobs[i - 1, whole[i]]) for i in range(len(context_ids), len(whole)))


def test_zero_shot_loglikelihood_scores_match_a_hand_computation(tiny_decoder: Path, tmp_path: Path):
    from transformers import LlamaForCausalLM, Trainer, TrainingArguments

    ref = tiny(tiny_decoder)
    tokenizer = load_tokenizer(ref)
    task = hucopa(scoring="loglikelihood", metric="acc_norm")
    data = TASK.prepare_data(task, tokenizer, SETTINGS)
    loaded = TASK.load_model(ref, task, tokenizer)
    assert loaded.peft_task_type == "CAUSAL_LM" and loaded.head_modules == ()

    lm = LlamaForCausalLM.from_pretrained(tiny_decoder).eval()
    expected = []
    for row in rows("hucopa", "test"):
        choices = [row["choice1"], row["choice2"]]
        lls = [hand_loglikelihood(lm, tokenizer, row["premise"], c) for c in choices]
        expected.append(
            (lls, [len(c) for c in choices], [len(c.encode()) for c in choices], int(row["label"]) - 1)
        )

    # The scorer's own scores for the first example (a batch of three, padded to its longest).
    model = loaded.model.eval()
    with torch.no_grad():
        scores = model(**data.collator([data.test[i] for i in range(3)])).logits
    lls, chars, utf8, _ = expected[0]
    by_hand = [[ll, ll / c, ll / b] for ll, c, b in zip(lls, chars, utf8, strict=True)]
    torch.testing.assert_close(
        scores[0].double(), torch.tensor(by_hand, dtype=torch.double), atol=1e-4, rtol=1e-5
    )

    # evaluate() through a Trainer that never trains: harness accuracy, acc_norm (per character), acc_bytes.
    def pick(normalise) -> list[int]:
        return [max(range(2), key=lambda i, e=e: normalise(e, i)) for e in expected]

    picks = {
        "accuracy": pick(lambda e, i: e[0][i]),
        "acc_norm": pick(lambda e, i: e[0][i] / e[1][i]),
        "acc_bytes": pick(lambda e, i: e[0][i] / e[2][i]),
    }
    gold = [e[3] for e in expected]
    trainer = Trainer(
        model=model,
        args=TrainingArguments(
            output_dir=str(tmp_path), per_device_eval_batch_size=3, use_cpu=True, report_to="none"
        ),
        data_collator=data.collator,
        compute_metrics=lambda p: TASK.compute_metrics(task, logits_of(p), p.label_ids),
    )
    evaluation = TASK.evaluate(trainer, task, data, "test")
    assert set(evaluation.metrics) == {"loss", "accuracy", "acc_norm", "acc_bytes", "mcc"}  # no timings
    for metric, picked in picks.items():
        assert evaluation.metrics[metric] == pytest.approx(
            sum(p == g for p, g in zip(picked, gold, strict=True)) / len(gold)
        )
    assert evaluation.predictions == picks["acc_norm"]  # the task's own metric picks the prediction


def test_likelihood_training_is_causal_lm_loss_on_the_gold_choice_only(tiny_decoder: Path):
    from transformers import LlamaForCausalLM

    ref = tiny(tiny_decoder)
    tokenizer = load_tokenizer(ref)
    task = commonsense_qa(scoring="loglikelihood")
    data = TASK.prepare_data(task, tokenizer, SETTINGS)
    source = rows("commonsense_qa", "train")
    first = data.train[0]
    assert len(first["input_ids"]) == 1 and first["choice_label"] == 0  # the gold continuation alone
    gold_text = source[0]["choices"]["text"]["ABCDE".index(source[0]["answerKey"])]
    assert tokenizer.decode([t for t in first["target_ids"][0] if t != -100]) == f" {gold_text}"
    assert len(data.validation[0]["input_ids"]) == 5

    batch = data.collator([data.train[i] for i in range(4)])
    with torch.no_grad():
        ours = TASK.load_model(ref, task, tokenizer).model(**batch).loss
        plain = LlamaForCausalLM.from_pretrained(tiny_decoder)(
            input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], labels=batch["target_ids"]
        ).loss
    torch.testing.assert_close(ours, plain)


@pytest.mark.parametrize(
    ("model", "scoring", "method"), [("tiny", "loglikelihood", "lora"), ("minilm-l6", None, "lora")]
)
def test_run_one_on_multiple_choice(
    model: str, scoring: str | None, method: str, tiny_decoder: Path, tmp_path: Path
):
    ref = tiny(tiny_decoder) if model == "tiny" else MODEL_CATALOG[model]
    metric = "acc_norm" if scoring else "accuracy"
    spec = RunSpec(
        sweep="t",
        model=ref,
        task=hucopa(scoring=scoring, metric=metric),
        method=method,
        label=method,
        params=METHODS[method].Params().model_dump(),
        training=SETTINGS.model_copy(update={"max_steps": 2, "learning_rate": 1e-3}),
        seed=0,
    )
    result = run_one(spec, tmp_path)
    assert result.status == "success", result.error
    expected = (
        {"accuracy", "acc_norm", "acc_bytes", "mcc", "loss"} if scoring else {"accuracy", "mcc", "loss"}
    )
    assert set(result.validation) == expected and set(result.test) == expected
    predictions = read_predictions(RunPaths(tmp_path).test_predictions)
    gold = [int(r["label"]) - 1 for r in rows("hucopa", "test")]
    assert [p.id for p in predictions] == [r["idx"] for r in rows("hucopa", "test")]
    hits = sum(p.label == g for p, g in zip(predictions, gold, strict=True))
    assert hits / len(gold) == result.test[metric]
