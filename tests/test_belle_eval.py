"""BELLE's protocol (Sun et al., 2023): every row tested on one common evaluation set, answers
generated at temperature 0.001, each scored 0-1 by a judge, averaged per category (math and code
together as "others") and over the 9 categories."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from peftbench.core.judge_settings import JudgeSettings
from peftbench.core.judge_templates import category_key
from peftbench.core.paths import RunPaths
from peftbench.core.predictions import read_predictions
from peftbench.core.spec import DataSource
from peftbench.models.loading import load_tokenizer
from peftbench.run.one import run_one
from peftbench.tasks import TASK_CATALOG
from peftbench.tasks.catalog import BELLE_CATEGORIES, BELLE_EVAL
from peftbench.tasks.generation import generate_texts
from peftbench.tasks.judge import Judge, JudgeError, JudgeItem, judge_metrics
from peftbench.tasks.sources import BUNDLED_DIR, load_split
from tests.conftest import REPO
from tests.test_generation import decoder_ref, fixture_files, run_spec
from tests.test_instruction import TAGGED_PROMPT, tagged_judge, tagged_score
from tests.test_judge import chat_server, completion
from tests.test_study_sweeps import runs_of

STANDIN = BUNDLED_DIR / "belle_eval_standin" / "test.jsonl"
BELLE_CLASSES = {
    "math",
    "code",
    "rewrite",
    "classification",
    "generation",
    "summarization",
    "extract",
    "open qa",
    "brainstorming",
    "closed qa",
}
STUDY_ROWS = ("belle_0.6m", "belle_2m", "belle_4m", "belle_math_0.25m")


def standin_rows() -> list[dict]:
    return [json.loads(line) for line in STANDIN.read_text(encoding="utf-8").splitlines()]


def on_fixtures(name: str) -> object:
    """A catalog BELLE row with its training data swapped for the BELLE-schema fixture (whole files:
    the catalog's absolute row counts fit a million-row set) and its common set for the stand-in."""
    return TASK_CATALOG[name].model_copy(
        update={
            "source": DataSource(files=fixture_files("belle_instruct")),
            "splits": {"train": "train", "validation": "validation", "test": "test"},
            "test_source": DataSource(bundled="belle_eval_standin"),
        }
    )


def test_the_stand_in_has_belles_layout_and_all_ten_classes():
    rows = standin_rows()
    assert {c: sum(r["class"] == c for r in rows) >= 2 for c in BELLE_CLASSES} == dict.fromkeys(
        BELLE_CLASSES, True
    )
    assert all(set(r) == {"id", "class", "instruction", "input", "output"} and r["output"] for r in rows)
    columns = set(BELLE_CLASSES) - set(BELLE_CATEGORIES) | set(BELLE_CATEGORIES.values())
    assert len(columns) == 9  # the study's table: others, rewrite, ..., closed qa


def test_every_study_row_tests_on_the_common_set_and_trains_at_its_scale():
    for name in STUDY_ROWS:
        task = TASK_CATALOG[name]
        assert task.test_source == BELLE_EVAL and task.splits["test"] == "test", name
        assert task.category_column == "class"
    # 0.6M: the first 600,000 rows of the 2M set, the last 1,000 of them selecting.
    six = TASK_CATALOG["belle_0.6m"]
    assert six.source == TASK_CATALOG["belle_2m"].source
    bounds = [int(n) for n in re.findall(r"\d+", six.splits["train"] + six.splits["validation"])]
    assert bounds == [599000, 599000, 600000]


def test_test_source_replaces_the_test_split_only():
    task = on_fixtures("belle_2m")
    test, validation = load_split(task, "test"), load_split(task, "validation")
    assert test["id"] == [r["id"] for r in standin_rows()]
    assert len(validation) == 8 and "id" not in validation.column_names  # the fixture's own rows


def test_a_belle_row_is_judged_per_category_on_the_common_set(tiny_decoder: Path, tmp_path: Path):
    with chat_server(tagged_judge) as server:
        judge = JudgeSettings(
            url=server.url,
            model="fake-judge",
            prompt=TAGGED_PROMPT,
            max_concurrent=4,
            category_groups=BELLE_CATEGORIES,
            where="run",  # judged inside the run, as a judge its nodes reach (the default judges apart)
        )
        task = on_fixtures("belle_2m").model_copy(update={"judge": judge, "metric": "judge"})
        spec = run_spec(
            decoder_ref(tiny_decoder),
            task,
            max_steps=1,
            batch_size=4,
            max_length=96,
            max_new_tokens=8,
            temperature=0.001,
            eval_strategy="no",
        )
        result = run_one(spec, tmp_path)
        requests = len(server.requests)
    assert result.status == "success", result.error
    rows = standin_rows()
    assert requests == 1 + 8 + len(rows)  # the check, validation (the fixture), test (the common set)

    written = read_predictions(RunPaths(tmp_path).test_predictions)
    assert [p.id for p in written] == [r["id"] for r in rows]
    by_column: dict[str, list[float]] = {}
    for row, prediction in zip(rows, written, strict=True):
        question = f"{row['instruction']}\n{row['input']}".strip()
        column = BELLE_CATEGORIES.get(row["class"], row["class"])
        by_column.setdefault(column, []).append(tagged_score(question, prediction.text or ""))
    expected = {f"judge/{c}": sum(s) / len(s) for c, s in by_column.items()}
    assert len(expected) == 9 and "judge/others" in expected and "judge/math" not in result.test
    assert {k: v for k, v in result.test.items() if k.startswith("judge/")} == pytest.approx(expected)
    assert result.test["judge"] == pytest.approx(sum(expected.values()) / 9)
    assert "judge" in result.validation  # the training data's held-out end, judged too


def test_categories_grouped_before_the_macro_average():
    scores, classes = [1.0, 0.0, 0.5, 1.0], ["math", "code", "rewrite", "rewrite"]
    # others = (1 + 0) / 2 = 0.5, rewrite = 0.75; macro 0.625 (ungrouped: (1 + 0 + 0.75) / 3)
    assert judge_metrics(scores, classes, BELLE_CATEGORIES) == pytest.approx(
        {"judge": 0.625, "judge/others": 0.5, "judge/rewrite": 0.75}
    )
    assert judge_metrics(scores, classes)["judge"] == pytest.approx(1.75 / 3)


def test_temperature_0001_answers_as_greedy_decoding_does_and_a_high_one_samples(tiny_decoder: Path):
    import torch
    from transformers import AutoModelForCausalLM

    tokenizer = load_tokenizer(decoder_ref(tiny_decoder))
    model = AutoModelForCausalLM.from_pretrained(tiny_decoder)
    prompts = [tokenizer(r["instruction"])["input_ids"] for r in standin_rows()[:3]]

    def answers(temperature: float | None) -> list[str]:
        torch.manual_seed(0)
        return generate_texts(
            model, tokenizer, prompts, seq2seq=False, max_new_tokens=4, batch_size=3, temperature=temperature
        )

    greedy = answers(None)
    assert answers(0.001) == greedy
    assert answers(50.0) != greedy  # sampled from an all but flat distribution over 49k tokens


UPSTREAM = Path(__file__).parent / "fixtures" / "upstream" / "belle_eval"


def belle_script() -> object:
    import importlib.util

    spec = importlib.util.spec_from_file_location("belle_eval_set", REPO / "scripts" / "belle_eval_set.py")
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


def study_judge() -> JudgeSettings:
    return next(r for r in runs_of("belle-instruct") if r.method == "full").task.judge  # type: ignore[return-value]


def test_belles_real_eval_set_converted_by_the_script_is_what_a_belle_row_tests_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """Upstream's own lines (fd6a876d), converted as a user converts the whole set, read through the
    catalog task's test_source (a local folder in the hub layout, the hub offline)."""
    monkeypatch.chdir(tmp_path)
    belle_script().main(UPSTREAM / "eval_set.json", Path("data/belle_eval"), UPSTREAM / "eval_prompt.json")
    test = load_split(TASK_CATALOG["belle_2m"], "test")
    upstream = belle_script().read_items(UPSTREAM / "eval_set.json")
    assert test["instruction"] == [u["question"] for u in upstream]
    assert test["output"] == [u["std_answer"] for u in upstream]
    assert set(test["class"]) == BELLE_CLASSES  # upstream's "closed\xa0qa" with a plain space
    assert sum(not o.strip() for o in test["output"]) == 3  # no reference: generation, brainstorming, rewrite
    assert set(test["input"]) == {""} and test["id"] == list(range(len(upstream)))


def test_the_study_sweeps_judge_prompts_are_belles_own_for_every_class_of_its_set(tmp_path: Path):
    module = belle_script()
    assert module.which_version(UPSTREAM / "eval_prompt.json").endswith("the study's")
    built = module.judge_prompts(module.read_items(UPSTREAM / "eval_prompt.json"))
    judge = study_judge()
    assert isinstance(judge.prompt, dict)
    assert {category_key(k): v for k, v in judge.prompt.items()} == {
        category_key(k): v for k, v in built.items()
    }
    for item in module.read_items(UPSTREAM / "eval_set.json"):
        template = judge.template_for(item["class"])
        assert ("{reference}" in template) == (item["class"] not in module.WITHOUT_REFERENCE), item["class"]


def test_belles_closed_qa_prompt_reaches_the_judge_and_its_score_is_read(tmp_path: Path):
    """The closed-qa item of the real slice through BELLE's own prompt to a local chat server (a
    stand-in for gpt-3.5-turbo, which answers as BELLE's prompt asks: "得分:" and then its reasons)."""
    upstream = belle_script().read_items(UPSTREAM / "eval_set.json")
    item = next(u for u in upstream if u["class"] == "closed\xa0qa")
    with chat_server(lambda body: completion("得分: 0.8\n理由：模型回答与标准答案基本一致。")) as server:
        judge = Judge(study_judge().model_copy(update={"url": server.url, "api_key_env": None}))
        score = judge.score(JudgeItem(item["question"], item["std_answer"], "模型的回答", item["class"]))
        judge.check()
        sent = [body["messages"][0]["content"] for _, body in server.requests]
    assert score == 0.8
    assert sent[0].startswith("你需要通过参考标准答案") and "且模型回答结果来自问题里面提供的信息" in sent[0]
    assert f"标准回答:{item['std_answer']}  模型回答：' 模型的回答'" in sent[0]
    with pytest.raises(JudgeError, match="no judge prompt for category 'poetry'"):
        judge.score(JudgeItem("q", "r", "a", "poetry"))


@pytest.mark.slow
def test_smoke_real_a_belle_row_answers_belles_real_eval_set(
    tiny_decoder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """`make smoke-real`: a BELLE row (trained on the BELLE-schema fixture) generates an answer for each
    real prompt of the vendored slice, converted as a user converts the set; scored by ROUGE-L (no
    judge server here), per category."""
    monkeypatch.chdir(tmp_path)
    belle_script().main(UPSTREAM / "eval_set.json", Path("data/belle_eval"), None)
    task = TASK_CATALOG["belle_2m"].model_copy(
        update={
            "source": DataSource(files=fixture_files("belle_instruct")),
            "splits": {"train": "train", "validation": "validation", "test": "test"},
        }
    )
    spec = run_spec(
        decoder_ref(tiny_decoder), task, max_steps=1, batch_size=4, max_length=96, max_new_tokens=4
    )
    result = run_one(spec, tmp_path / "run")
    assert result.status == "success", result.error
    written = read_predictions(RunPaths(tmp_path / "run").test_predictions)
    assert [p.id for p in written] == list(range(11)) and "rougeL" in result.test
