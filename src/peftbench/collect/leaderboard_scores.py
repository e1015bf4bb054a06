"""Our test scores beside a leaderboard's published ones (SloBENCH's Slovene SuperGLUE).

`leaderboards.py` writes submissions; this module reads what a leaderboard has published, from a
small data file per board in `collect/boards/` (its URL, the tasks and metrics it reports, and
one entry per submission with the entry's source URL, the date its figures were read and whether
they were checked against that source), and prints one table: a row per model × method of ours
(each task at the point chosen on validation, as the main table) and a row per published entry.

Only figures in the file are printed; a board whose file holds no entries prints our rows and says
that no published figure is there. Our test split is the leaderboard's public validation split
where its test labels are hidden (the catalog's DEV_AS_TEST), so the two columns do not score the
same examples: the note says so.
"""

from __future__ import annotations

import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from peftbench.collect.table_model import Column, Table, fixed, text_column
from peftbench.core.errors import PeftbenchError

if TYPE_CHECKING:
    import pandas as pd

BOARDS_DIR = Path(__file__).parent / "boards"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class BoardTask(_Strict):
    task: str = Field(description="Our catalog task this leaderboard task is.")
    metric: str = Field(description="The metric the leaderboard reports for it, by our name.")


class PublishedEntry(_Strict):
    submission: str = Field(description="The submission's name on the leaderboard.")
    model: str | None = Field(None, description="Our model name it compares with, if any.")
    source: str = Field(description="URL the figures were read from.")
    retrieved: datetime.date = Field(description="Date the figures were read.")
    verified: bool = Field(description="Whether the figures were checked against the source itself.")
    scores: dict[str, float] = Field(
        description="Leaderboard task -> published figure, in the board's scale."
    )

    @model_validator(mode="after")
    def _source_is_a_url(self) -> PublishedEntry:
        if not self.source.startswith(("http://", "https://")):
            raise ValueError(f"source must be the URL the figures were read from (got {self.source!r})")
        return self


class PublishedBoard(_Strict):
    leaderboard: str
    url: str
    scale: Literal["fraction", "percent"]
    tasks: dict[str, BoardTask]
    entries: list[PublishedEntry]

    @model_validator(mode="after")
    def _scores_name_known_tasks(self) -> PublishedBoard:
        for i, entry in enumerate(self.entries):
            unknown = sorted(set(entry.scores) - set(self.tasks))
            if unknown:
                raise ValueError(
                    f"entries[{i}].scores: unknown task(s) {unknown}; allowed: {sorted(self.tasks)}"
                )
            top = 100.0 if self.scale == "percent" else 1.0
            bad = {k: v for k, v in entry.scores.items() if not -top <= v <= top}
            if bad:
                raise ValueError(
                    f"entries[{i}].scores: {bad} outside [-{top:g}, {top:g}] ({self.scale} scale)"
                )
        return self

    def fraction(self, value: float) -> float:
        return value / 100 if self.scale == "percent" else value


class PublishedFileError(PeftbenchError, ValueError):
    """A published-figures file that does not parse or validate; the message names the file and keys."""


def load_board(path: Path) -> PublishedBoard:
    """One published-figures file, validated; PublishedFileError names the file and every bad key."""
    try:
        return PublishedBoard.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")))
    except yaml.YAMLError as err:
        raise PublishedFileError(f"{path}: not YAML: {err}") from err
    except ValidationError as err:
        lines = [f"{'.'.join(str(p) for p in e['loc']) or '(file)'}: {e['msg']}" for e in err.errors()]
        raise PublishedFileError(f"{path}: " + "; ".join(lines)) from err


def shipped_boards() -> list[PublishedBoard]:
    return [load_board(p) for p in sorted(BOARDS_DIR.glob("*.yaml"))]


def leaderboard_table(best: pd.DataFrame, board: PublishedBoard) -> Table | None:
    """Ours and the published entries side by side, or None when no task of ours is on the board."""
    ours = set(best["task"])
    keys = [k for k, t in board.tasks.items() if t.task in ours]
    if not keys:
        return None
    columns = [text_column("source", "source"), text_column("model", "model")]
    columns += [text_column("method / submission", "method")]
    columns += [Column(f"{k} ({board.tasks[k].metric})", k, fixed(3)) for k in keys]
    return Table(
        f"leaderboard-{board.leaderboard}",
        f"Our test scores beside the {board.leaderboard} leaderboard's published ones",
        columns,
        _our_rows(best, board, keys) + _published_rows(board, keys),
        _notes(board),
    )


def _our_rows(best: pd.DataFrame, board: PublishedBoard, keys: list[str]) -> list[list[Any]]:
    """A row per model × method of ours: each board task's test metric at the point chosen on validation."""
    rows: list[list[Any]] = []
    for (model, method), cells in best.groupby(["model", "method"], sort=True):
        by_task = {cell["task"]: cell for _, cell in cells.iterrows()}
        values = [_our_score(by_task.get(board.tasks[k].task), board.tasks[k].metric) for k in keys]
        rows.append(["ours", model, method, *values])
    return rows


def _published_rows(board: PublishedBoard, keys: list[str]) -> list[list[Any]]:
    """A row per published entry, its figures as fractions; unverified entries say so in their name."""
    rows: list[list[Any]] = []
    for entry in board.entries:
        name = entry.submission + ("" if entry.verified else " (unverified)")
        values = [board.fraction(entry.scores[k]) if k in entry.scores else None for k in keys]
        rows.append(["published", entry.model or "–", name, *values])
    return rows


def _our_score(cell: pd.Series | None, metric: str) -> float | None:
    if cell is None:
        return None
    value = cell.get(f"test_{metric}")
    return None if value is None else float(value)


def _notes(board: PublishedBoard) -> list[str]:
    notes = [
        f"Published: {board.url}, as a fraction. Ours: the test metric at the point chosen on validation, "
        "mean over seeds; where the leaderboard's test labels are hidden, our test is its public "
        "validation split, so the two do not score the same examples."
    ]
    if not board.entries:
        notes.append(
            f"No published figure is in peftbench's file for {board.leaderboard} (collect/boards/): none "
            "could be read or checked without network access; add entries there with their source and date."
        )
    for entry in board.entries:
        checked = "checked against the source" if entry.verified else "NOT checked against the source"
        notes.append(f"{entry.submission}: {entry.source}, read {entry.retrieved.isoformat()}, {checked}.")
    return notes


def leaderboard_tables(best: pd.DataFrame) -> list[Table]:
    """A table for each shipped board that holds at least one task of `best`."""
    return [t for board in shipped_boards() if (t := leaderboard_table(best, board)) is not None]
