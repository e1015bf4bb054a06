"""Reading a task's rows: a limit on a grouped task (MultiRC's answers, grouped by question) keeps
whole groups, so `em` never scores part of a question."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from peftbench.core.spec import DataSource, TrainingSettings
from peftbench.models.catalog import MODEL_CATALOG
from peftbench.models.loading import load_tokenizer
from peftbench.tasks import TASK_CATALOG, TASK_TYPES
from peftbench.tasks.classification import GROUP_ID
from peftbench.tasks.sources import load_rows, load_split
from peftbench.tasks.token_cache import KEY_FILE, TokenizationCache

FIXTURE = Path(__file__).parent / "fixtures" / "slo_multirc"
CATALOG = TASK_CATALOG["slo_multirc"]
MULTIRC = CATALOG.model_copy(
    update={
        "source": DataSource(
            files={s: str(FIXTURE / f"{s}.jsonl") for s in ("train", "validation", "test")},
            layout=CATALOG.source.layout,
        )
    }
)
COLUMNS = [*MULTIRC.text_columns, MULTIRC.label_column, "question_idx"]


def test_a_limit_on_a_grouped_task_keeps_every_answer_of_each_question_it_starts():
    answers = Counter(load_split(MULTIRC, "test")["question_idx"])  # test: the fixture's validation file
    first_three = load_split(MULTIRC, "test")["question_idx"][:3]
    assert Counter(first_three)[first_three[-1]] < answers[first_three[-1]]  # 3 rows split a question
    for limit in (1, 2, 3, 5):
        kept = Counter(load_rows(MULTIRC, "test", limit, COLUMNS)["question_idx"])
        assert all(kept[q] == answers[q] for q in kept)  # every kept question whole
        assert limit <= sum(kept.values()) < limit + max(answers.values())
    ungrouped = MULTIRC.model_copy(update={"group_column": None})
    assert len(load_rows(ungrouped, "test", 3, COLUMNS)) == 3  # other tasks: the first N rows


def test_max_eval_and_train_samples_keep_whole_questions_through_the_tokenization_cache(tmp_path: Path):
    settings = TrainingSettings(max_length=64, max_train_samples=3, max_eval_samples=3)
    data = TASK_TYPES["classification"].prepare_data(
        MULTIRC, load_tokenizer(MODEL_CATALOG["minilm-l6"]), settings, TokenizationCache(tmp_path)
    )
    for split, ours in (("train", data.train), ("validation", data.validation), ("test", data.test)):
        answers = Counter(load_split(MULTIRC, split)["question_idx"])
        kept = Counter(ours[GROUP_ID])
        assert all(kept[q] == answers[q] for q in kept), split
        assert len(ours) >= min(3, answers.total()), split
    assert len(data.test) == 4 and len(data.train) == 4  # 3 rows start 2 questions of 2 answers
    keys = [json.loads(p.read_text()) for p in tmp_path.glob(f"*/{KEY_FILE}")]
    assert {json.dumps(k["limit"], sort_keys=True) for k in keys} == {
        json.dumps({"rows": 3, "whole_groups": "question_idx"}, sort_keys=True)
    }  # another key than the first-3-rows cut's, so an entry cached before is not reused
