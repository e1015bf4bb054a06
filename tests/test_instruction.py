"""Instruction tuning: BELLE-style data, response-only loss, packing, and the judge end to end."""

from __future__ import annotations

import itertools
import json
import re
from pathlib import Path
from typing import Any

import pytest
import torch

from peftbench.core.judge_settings import JudgeSettings
from peftbench.core.judging import read_answers
from peftbench.core.paths import RunPaths
from peftbench.core.predictions import read_predictions
from peftbench.core.spec import DataSource, TaskSpec, TrainingSettings
from peftbench.methods import METHODS
from peftbench.models.loading import load_tokenizer
from peftbench.run.one import run_one
from peftbench.tasks import TASK_TYPES
from peftbench.tasks.generation import IGNORE
from tests.test_generation import decoder_ref, fixture_files, read_rows, run_spec
from tests.test_judge import chat_server, completion

INSTRUCTION = TASK_TYPES["instruction"]
BELLE = TaskSpec(
    name="belle_instruct",
    type="instruction",
    source=DataSource(files=fixture_files("belle_instruct")),
    text_columns=["instruction", "input"],
    target_column="output",
    category_column="class",
    metric="rougeL",
    language="zh",
)
TAGGED_PROMPT = "<q>{question}</q><c>{category}</c><a>{answer}</a>"


def expected_prompt(row: dict[str, Any]) -> str:
    input_line = f"\n{row['input']}" if row["input"] else ""
    return f"Human: {row['instruction']}{input_line}\n\nAssistant: "


def test_belle_prompt_has_an_input_line_only_when_there_is_input(tiny_decoder: Path):
    tokenizer = load_tokenizer(decoder_ref(tiny_decoder))
    data = INSTRUCTION.prepare_data(BELLE, tokenizer, TrainingSettings(max_length=96, max_new_tokens=32))
    rows = read_rows("belle_instruct", "train")
    assert any(r["input"] for r in rows) and any(not r["input"] for r in rows)
    for row, example in zip(rows, data.train, strict=True):
        ids, labels = example["input_ids"], example["labels"]
        n_prompt = labels.count(IGNORE)
        assert labels[:n_prompt] == [IGNORE] * n_prompt and labels[n_prompt:] == ids[n_prompt:]
        assert tokenizer.decode(ids[:n_prompt]) == expected_prompt(row)
        assert tokenizer.decode(ids[n_prompt:]) == row["output"] + tokenizer.eos_token
    texts = data.texts["test"]
    test_rows = read_rows("belle_instruct", "test")
    assert texts.categories == [r["class"] for r in test_rows]
    assert texts.questions == [f"{r['instruction']}\n{r['input']}".strip() for r in test_rows]


def packed_and_unpacked(tiny_decoder: Path, max_length: int = 96) -> tuple[Any, Any, Any]:
    tokenizer = load_tokenizer(decoder_ref(tiny_decoder))
    settings = {"max_length": max_length, "max_new_tokens": 32}
    packed = INSTRUCTION.prepare_data(BELLE, tokenizer, TrainingSettings(**settings, packing=True))
    plain = INSTRUCTION.prepare_data(BELLE, tokenizer, TrainingSettings(**settings))
    return tokenizer, packed, plain


def test_packing_keeps_every_example_and_its_response_only_labels(tiny_decoder: Path):
    _, packed, plain = packed_and_unpacked(tiny_decoder)
    assert 1 < len(packed.train) < len(plain.train) == 8
    assert all(len(row["input_ids"]) <= 96 for row in packed.train)
    # Cut each packed row where its positions restart: the pieces are the unpacked examples, in order.
    pieces = []
    for row in packed.train:
        starts = [i for i, p in enumerate(row["position_ids"]) if p == 0] + [len(row["input_ids"])]
        pieces += [
            (row["input_ids"][a:b], row["labels"][a:b], row["position_ids"][a:b])
            for a, b in itertools.pairwise(starts)
        ]
    assert [(ids, labels) for ids, labels, _ in pieces] == [
        (e["input_ids"], e["labels"]) for e in plain.train
    ]
    assert all(positions == list(range(len(ids))) for ids, _, positions in pieces)
    assert packed.train_tokens == plain.train_tokens

    # Through the collator too: a batch of packed rows is labelled -100 on every prompt token.
    batch = packed.collator([packed.train[i] for i in range(len(packed.train))])
    assert set(batch) == {"input_ids", "labels", "position_ids", "use_cache"} and batch["use_cache"] is False
    prompt_tokens = sum(e["labels"].count(IGNORE) for e in plain.train)
    padding = int(
        (batch["position_ids"].shape[1] * len(packed.train)) - sum(len(e["input_ids"]) for e in plain.train)
    )
    assert int((batch["labels"] == IGNORE).sum()) == prompt_tokens + padding
    learned = batch["labels"][batch["labels"] != IGNORE].tolist()
    assert learned == [t for e in plain.train for t in e["labels"] if t != IGNORE]


def test_packed_examples_do_not_see_each_other(tiny_decoder: Path):
    """In a packed batch every example gets the logits it gets alone: it attends to itself only, at
    its own positions. Without the position restarts the later examples would see the earlier ones."""
    tokenizer, packed, plain = packed_and_unpacked(tiny_decoder)
    loaded = INSTRUCTION.load_model(decoder_ref(tiny_decoder), BELLE, tokenizer)
    model = METHODS["full"].prepare(loaded, METHODS["full"].Params()).eval()
    batch = packed.collator(list(packed.train))
    with torch.no_grad():
        packed_logits = model(**{k: v for k, v in batch.items() if k != "labels"}).logits
        naive_logits = model(input_ids=batch["input_ids"]).logits  # one sequence per row
        alone = [model(input_ids=torch.tensor([e["input_ids"]])).logits[0] for e in plain.train]
    packed_diff = naive_diff = 0.0
    examples = iter(alone)
    for row in range(len(packed.train)):
        positions = batch["position_ids"][row].tolist()
        length = len(packed.train[row]["input_ids"])
        starts = [i for i in range(length) if positions[i] == 0] + [length]
        for a, b in itertools.pairwise(starts):
            expected = next(examples)
            packed_diff = max(packed_diff, (packed_logits[row, a:b] - expected).abs().max().item())
            naive_diff = max(naive_diff, (naive_logits[row, a:b] - expected).abs().max().item())
    assert next(examples, None) is None
    assert packed_diff < 1e-4 < 1e-2 < naive_diff


def test_instruction_problems():
    assert INSTRUCTION.problems(BELLE) == []
    judged = BELLE.model_copy(update={"metric": "judge"})
    assert [key for key, *_ in INSTRUCTION.problems(judged)] == ["metric"]
    with_judge = judged.model_copy(update={"judge": JudgeSettings(url="http://localhost:8000/v1", model="m")})
    assert INSTRUCTION.problems(with_judge) == []
    assert [
        k for k, *_ in TASK_TYPES["generation"].problems(with_judge.model_copy(update={"type": "generation"}))
    ] == [
        "metric",
        "judge",
    ]


def tagged_score(question: str, answer: str) -> float:
    """The fake judge's rule: depends on the answer (and the question, so that scores vary)."""
    return (len(question) + len(answer)) % 5 / 4


def tagged_judge(body: dict[str, Any]) -> tuple[int, bytes]:
    message = body["messages"][0]["content"]
    question, answer = (re.search(f"<{t}>(.*?)</{t}>", message, re.S).group(1) for t in ("q", "a"))  # type: ignore[union-attr]
    return completion(f"Compared with the reference.\n{tagged_score(question, answer)}")


def test_instruction_run_with_packing_and_a_judge(tiny_decoder: Path, tmp_path: Path):
    with chat_server(tagged_judge) as server:
        judge = JudgeSettings(
            url=server.url, model="fake-judge", prompt=TAGGED_PROMPT, max_concurrent=4, where="run"
        )
        task = BELLE.model_copy(update={"judge": judge, "metric": "judge"})
        spec = run_spec(
            decoder_ref(tiny_decoder),
            task,
            method="lora",
            max_steps=3,
            batch_size=2,
            max_length=96,
            max_new_tokens=8,
            packing=True,
            eval_strategy="no",
            learning_rate=5e-3,
        )
        result = run_one(spec, tmp_path)
        requests = len(server.requests)
    assert result.status == "success", result.error
    assert requests == 1 + 8 + 8  # the check before training, then validation and test

    rows = read_rows("belle_instruct", "test")
    written = read_predictions(RunPaths(tmp_path).test_predictions)
    assert [p.index for p in written] == list(range(8)) and all(p.text is not None for p in written)
    by_category: dict[str, list[float]] = {}
    for row, prediction in zip(rows, written, strict=True):
        question = f"{row['instruction']}\n{row['input']}".strip()
        by_category.setdefault(row["class"], []).append(tagged_score(question, prediction.text or ""))
    per_category = {f"judge/{c}": sum(s) / len(s) for c, s in by_category.items()}
    assert len(per_category) == 7  # two translation rows share one category
    assert {k: v for k, v in result.test.items() if k.startswith("judge/")} == pytest.approx(per_category)
    assert result.test["judge"] == pytest.approx(sum(per_category.values()) / 7)
    assert {"loss", "rougeL", "bleu", "judge"} <= set(result.validation)


def test_unreachable_judge_fails_the_run_before_training(tiny_decoder: Path, tmp_path: Path):
    judge = JudgeSettings(url="http://127.0.0.1:9/v1", model="m", where="run")
    spec = run_spec(decoder_ref(tiny_decoder), BELLE.model_copy(update={"judge": judge}), max_steps=1)
    result = run_one(spec, tmp_path)
    assert result.status == "failed"
    assert "Judge http://127.0.0.1:9/v1/chat/completions unreachable" in (result.error or "")
    assert "prepare_data" in (result.error or "") and result.cost.train_seconds == 0


def test_a_judge_apart_takes_no_part_in_the_run(tiny_decoder: Path, tmp_path: Path):
    """The default judge (where: apart) is never asked: its URL answers nothing, yet the run succeeds
    with its text metrics and saves each answer with what it answered, for `peftbench judge`."""
    judge = JudgeSettings(url="http://127.0.0.1:9/v1", model="m")
    task = BELLE.model_copy(update={"judge": judge, "metric": "judge"})
    spec = run_spec(decoder_ref(tiny_decoder), task, max_steps=1, max_new_tokens=4, eval_strategy="no")
    assert spec.run_id == spec.model_copy(update={"task": task.model_copy(update={"judge": None})}).run_id
    result = run_one(spec, tmp_path)
    assert result.status == "success", result.error
    assert "judge" not in result.test and "judge" not in result.validation
    assert {"loss", "rougeL", "bleu"} <= set(result.test)
    answers = read_answers(RunPaths(tmp_path).answers)
    rows = {split: read_rows("belle_instruct", split) for split in ("validation", "test")}
    assert [(a.split, a.index) for a in answers] == [
        (split, i) for split in ("validation", "test") for i in range(len(rows[split]))
    ]
    written = read_predictions(RunPaths(tmp_path).test_predictions)
    tests = [a for a in answers if a.split == "test"]
    assert [a.answer for a in tests] == [p.text for p in written]
    assert [(a.reference, a.category) for a in tests] == [(r["output"], r["class"]) for r in rows["test"]]


def test_fixture_rows_have_the_belle_columns():
    for split in ("train", "validation", "test"):
        for line in (Path(fixture_files("belle_instruct")[split])).read_text(encoding="utf-8").splitlines():
            assert set(json.loads(line)) == {"instruction", "input", "output", "class"}
