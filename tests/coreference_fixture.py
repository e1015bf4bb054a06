"""The coref_demo fixture (tests/fixtures/coref_demo) as a coreference task, for the coreference tests."""

from __future__ import annotations

import json
from pathlib import Path

from peftbench.core.spec import DataSource, TaskSpec

FIXTURE = Path(__file__).parent / "fixtures" / "coref_demo"


def coref(**fields) -> TaskSpec:
    spec = {
        "name": "coref_demo",
        "type": "coreference",
        "source": DataSource(files={s: str(FIXTURE / f"{s}.jsonl") for s in ("train", "validation", "test")}),
        "text_columns": ["sentences"],
        "label_column": "clusters",
        "metric": "conll_f1",
    }
    return TaskSpec(**(spec | fields))


def rows(split: str) -> list[dict]:
    return [json.loads(line) for line in (FIXTURE / f"{split}.jsonl").read_text("utf-8").splitlines()]


def as_sets(clusters) -> set[frozenset]:
    return {frozenset(tuple(m) for m in cluster) for cluster in clusters}
