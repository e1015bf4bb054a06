"""Our scores beside a leaderboard's published ones: the shipped file, a board with entries, bad files."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import yaml

from peftbench.collect.formats import to_markdown
from peftbench.collect.leaderboard_scores import (
    BOARDS_DIR,
    PublishedFileError,
    leaderboard_table,
    load_board,
    shipped_boards,
)
from peftbench.tasks import TASK_CATALOG, TASK_TYPES

SLOBENCH = BOARDS_DIR / "slobench-superglue.yaml"
BEST = pd.DataFrame(
    [
        {"model": "sloberta", "method": "lora", "task": "slo_boolq", "test_accuracy": 0.7612},
        {"model": "sloberta", "method": "lora", "task": "slo_cb", "test_f1_macro": 0.655},
        {"model": "sloberta", "method": "full", "task": "slo_boolq", "test_accuracy": 0.8},
    ]
)


def board_file(tmp_path: Path, **changes) -> Path:
    data = yaml.safe_load(SLOBENCH.read_text(encoding="utf-8")) | changes
    path = tmp_path / "board.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


ENTRY = {
    "submission": "test entry",
    "model": "sloberta",
    "source": "https://example.org/board",
    "retrieved": "2026-01-31",
    "verified": False,
    "scores": {"BoolQ": 79.5, "CB": 70.0},
}


def test_the_shipped_file_maps_to_catalog_tasks_and_metrics_they_report():
    [board] = shipped_boards()
    assert board.leaderboard == "slobench-superglue" and board.url == "https://slobench.cjvt.si/"
    for key, mapped in board.tasks.items():
        task = TASK_CATALOG[mapped.task]
        assert mapped.metric in TASK_TYPES[task.type].metrics, key
    assert board.entries == []  # nothing could be read offline: no figure is made up
    superglue = {"BoolQ", "CB", "COPA", "MultiRC", "ReCoRD", "RTE", "WiC", "WSC"}
    assert set(board.tasks) == superglue  # all eight, though SloBENCH's scorer scores six


def test_ours_beside_published_entries_with_their_source(tmp_path: Path):
    board = load_board(board_file(tmp_path, scale="percent", entries=[ENTRY]))
    table = leaderboard_table(BEST, board)
    assert table is not None
    markdown = to_markdown(table)
    assert "| source | model | method / submission | BoolQ (accuracy) | CB (f1_macro) |" in markdown
    assert "| ours | sloberta | lora | 0.761 | 0.655 |" in markdown
    assert "| ours | sloberta | full | 0.800 | – |" in markdown
    assert "| published | sloberta | test entry (unverified) | 0.795 | 0.700 |" in markdown
    assert "https://example.org/board, read 2026-01-31, NOT checked against the source" in markdown


def test_an_empty_board_prints_ours_and_says_why_nothing_is_beside_it():
    [board] = shipped_boards()
    table = leaderboard_table(BEST, board)
    assert table is not None and [r[0] for r in table.rows] == ["ours", "ours"]
    assert any("No published figure" in n for n in table.notes)
    assert leaderboard_table(BEST.assign(task="hucola"), board) is None


@pytest.mark.parametrize(
    ("entry", "says"),
    [
        (
            ENTRY | {"scores": {"BoolQ2": 0.5}},
            "entries[0].scores: unknown task(s) ['BoolQ2']; allowed: ['BoolQ', 'CB', 'COPA'",
        ),
        (ENTRY | {"source": "the website"}, "entries.0: Value error, source must be the URL"),
        ({k: v for k, v in ENTRY.items() if k != "retrieved"}, "entries.0.retrieved: Field required"),
        (ENTRY | {"scores": {"BoolQ": 1.5}}, "outside [-1, 1] (fraction scale)"),
    ],
)
def test_a_bad_entry_is_refused_naming_the_file_and_key(tmp_path: Path, entry, says):
    path = board_file(tmp_path, entries=[entry])
    with pytest.raises(PublishedFileError) as info:
        load_board(path)
    assert str(path) in str(info.value) and says in str(info.value)


def test_multirc_is_compared_by_superglues_f1a():
    [board] = shipped_boards()
    assert board.tasks["MultiRC"].metric == "f1a"
    best = pd.DataFrame([{"model": "sloberta", "method": "lora", "task": "slo_multirc", "test_f1a": 0.7124}])
    markdown = to_markdown(leaderboard_table(best, board))
    assert "| source | model | method / submission | MultiRC (f1a) |" in markdown
    assert "| ours | sloberta | lora | 0.712 |" in markdown
