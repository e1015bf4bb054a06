"""The studies' own published figures, as data: the "paper" column beside our numbers.

Each study sweep's published table lives in `collect/published/<sweep>.yaml` (package data, so an
installed copy has it): the figures as the study printed them, its scale (percent or fraction), and
explicit mappings from the study's model, method and task names to ours. `published_for` finds the
files whose `sweeps` name a sweep of the results; a study with no file (SloBENCH: no published
figures) simply has no paper column. A file is checked against `PublishedStudy` before any number
is read: a bad key, a name with no mapping, a figure that is not a number is a ConfigError naming
the file and the key.

A figure is compared with one value of our chosen cell (model × method × task, the point chosen on
validation): a test metric (`test_<metric>`) or a cost column (`COST_METRICS`). A study that picked
its numbers as the best over its hyper-parameter grid (`selection: best_over_grid`) is also put
beside our grid-maximum cells (`collect.protocols`), labelled so.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field, ValidationError

from peftbench.core.errors import ConfigError, Problem, format_key, unknown_name
from peftbench.core.spec import StrictModel

if TYPE_CHECKING:
    import pandas as pd

PUBLISHED_DIR = Path(__file__).resolve().parent / "published"


# A cost column of a chosen cell: how our value is read (`_our_value`) and how it is compared
COST_METRICS = (
    "trainable_params",
    "total_params",
    "train_seconds",
    "peak_rss_bytes",
    "train_hours_per_epoch",
)


ROW_KEYS = ("model", "method", "task", "ours")


SCALE_FACTOR = {"percent": 0.01, "fraction": 1.0}


class FigureColumn(StrictModel):
    """What one column of the study's table is, in our terms."""

    task: str | None = Field(None, description="Our task (default: the row's task).")
    metric: str = Field(description=f"Our test metric, or a cost column: {', '.join(COST_METRICS)}.")
    factor: float | None = Field(
        None,
        gt=0,
        description="Figure × factor = our unit (MB → bytes: 1e6); default: the study's scale for "
        "scores (percent: 0.01), 1 for costs.",
    )


class OurCell(StrictModel):
    """A row's cell in our tables where the name mappings do not give it (incremental rows, ...)."""

    model: str | None = None
    method: str | None = None
    task: str | None = None


class PublishedStudy(StrictModel):
    """One study's published table, with the mappings onto our names."""

    study: str = Field(description="The study, as cited.")
    source: str = Field(description="Where in the study the figures are (table, split, hardware).")
    protocol: str = Field("", description="How the study trained and chose, in its words.")
    sweeps: list[str] = Field(min_length=1, description="The sweep names whose results these sit beside.")
    selection: Literal["validation", "best_over_grid"] = Field(
        "validation",
        description="How the study picked a figure: on validation, or the best over its hyper-parameter "
        "sets on the reported split.",
    )
    scale: Literal["percent", "fraction"] = Field(description="How the study wrote its scores.")
    model: str | None = Field(None, description="Our model for rows that name none.")
    models: dict[str, str] = Field(default_factory=dict, description="The study's model name -> ours.")
    methods: dict[str, str] = Field(
        default_factory=dict, description="The study's method name -> our method as tables show it."
    )
    tasks: dict[str, str] = Field(
        default_factory=dict, description="A row's `task` (the study's task or data name) -> our task."
    )
    columns: dict[str, FigureColumn] = Field(min_length=1, description="Figure column -> our task/metric.")
    rows: list[dict[str, Any]] = Field(min_length=1, description="The study's rows; null: illegible.")
    cost_table: bool = Field(
        False, description="Also print our cost table in the study's units (collect.study_cost)."
    )
    _file: str = "<published>"

    @property
    def file(self) -> str:
        return self._file


@dataclass(frozen=True)
class Figure:
    """One published number, placed on our cell and in our unit (None: illegible in the source)."""

    study: str
    model: str
    method: str
    task: str
    metric: str
    column: str  # the study's own column name
    paper: float | None
    selection: str

    @property
    def is_cost(self) -> bool:
        return self.metric in COST_METRICS


def read_published(path: Path) -> PublishedStudy:
    """One published-figures file, checked whole: every problem in one ConfigError."""
    import yaml

    file = str(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as err:
        raise ConfigError([Problem(file, "<top level>", f"Not readable YAML: {err}")]) from None
    try:
        study = PublishedStudy.model_validate(data)
    except ValidationError as err:
        raise ConfigError(_validation_problems(file, err)) from None
    study._file = file
    problems = _row_problems(study)
    if problems:
        raise ConfigError(problems)
    return study


def _validation_problems(file: str, err: ValidationError) -> list[Problem]:
    problems = []
    for e in err.errors():
        key = format_key(e["loc"])
        if e["type"] == "extra_forbidden":
            model = PublishedStudy if len(e["loc"]) == 1 else FigureColumn
            allowed = tuple(model.model_fields)
            problems.append(Problem(file, key, f"Unknown key {e['loc'][-1]!r}.", e["loc"][-1], allowed))
        else:
            problems.append(Problem(file, key, f"{e['msg']} (got {e.get('input')!r})."))
    return problems


RowCheck = Callable[["PublishedStudy", str, dict[str, Any], dict[str, Any]], list[Problem]]


def _row_problems(study: PublishedStudy) -> list[Problem]:
    """Every row names a mapped model, method and task, and holds only numbers (or null) in columns."""
    found = []
    for i, row in enumerate(study.rows):
        ours = row.get("ours") or {}
        for check in ROW_CHECKS:
            found += check(study, f"rows[{i}]", row, ours)
    return found


def _ours_problems(
    study: PublishedStudy, key: str, row: dict[str, Any], ours: dict[str, Any]
) -> list[Problem]:
    try:
        OurCell.model_validate(ours)
    except ValidationError as err:
        return [Problem(study.file, f"{key}.ours.{format_key(e['loc'])}", e["msg"]) for e in err.errors()]
    return []


def _names_problems(
    study: PublishedStudy, key: str, row: dict[str, Any], ours: dict[str, Any]
) -> list[Problem]:
    """A model and a method come from somewhere; a name the row gives has a mapping (unless `ours` says)."""
    found = []
    if "model" not in row and study.model is None and "model" not in ours:
        found.append(Problem(study.file, key, "No model: give the row one, or the file a `model:`."))
    for name, mapping in (("model", study.models), ("method", study.methods), ("task", study.tasks)):
        if name in row and name not in ours and row[name] not in mapping:
            kind = f"{name} (no mapping)"
            found.append(unknown_name(study.file, f"{key}.{name}", kind, row[name], mapping))
    if "method" not in row and "method" not in ours:
        found.append(Problem(study.file, key, "No method."))
    return found


def _figure_problems(
    study: PublishedStudy, key: str, row: dict[str, Any], ours: dict[str, Any]
) -> list[Problem]:
    """Each figure sits in a known column, is a number or null, and has a task (the column's or the row's)."""
    row_has_task = "task" in row or "task" in ours
    found = [_figure_problem(study, f"{key}.{c}", c, value, row_has_task) for c, value in _figures_of(row)]
    return [p for p in found if p is not None]


def _figure_problem(
    study: PublishedStudy, key: str, column: str, value: Any, row_has_task: bool
) -> Problem | None:
    if column not in study.columns:
        allowed = (*ROW_KEYS, *study.columns)
        return Problem(study.file, key, f"Unknown column {column!r}.", column, allowed)
    if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
        return Problem(study.file, key, f"A figure is a number or null (got {value!r}).")
    if study.columns[column].task is None and not row_has_task:
        return Problem(study.file, key, "The column names no task and the row has none.")
    return None


ROW_CHECKS: tuple[RowCheck, ...] = (_ours_problems, _names_problems, _figure_problems)


def _figures_of(row: dict[str, Any]) -> list[tuple[str, Any]]:
    """A row's (column, figure) pairs: every key that is not a row key."""
    return [(column, value) for column, value in row.items() if column not in ROW_KEYS]


def shipped_studies() -> list[Path]:
    return sorted(PUBLISHED_DIR.glob("*.yaml"))


def published_for(sweeps: set[str], extra: list[Path] | tuple[Path, ...] = ()) -> list[PublishedStudy]:
    """The studies (shipped, then `extra` files) whose `sweeps` name one of `sweeps`."""
    studies = [read_published(p) for p in [*shipped_studies(), *extra]]
    return [s for s in studies if set(s.sweeps) & sweeps]


def figures(study: PublishedStudy) -> list[Figure]:
    """Each published number on our cell, in our unit, in the study's row and column order."""
    out = []
    for row in study.rows:
        model, method, row_task = _row_cell(study, row)
        for column, value in _figures_of(row):
            spec = study.columns[column]
            paper = None if value is None else float(value) * _factor(study, spec)
            task = spec.task or row_task
            assert model is not None and task is not None  # _row_problems checked both
            out.append(Figure(study.study, model, method, task, spec.metric, column, paper, study.selection))
    return out


def _row_cell(study: PublishedStudy, row: dict[str, Any]) -> tuple[str | None, str, str | None]:
    """(our model, our method, our task or None) of a row: `ours` first, then the study's mappings."""
    ours = OurCell.model_validate(row.get("ours") or {})
    model = ours.model or (study.models[row["model"]] if "model" in row else study.model)
    method = ours.method or study.methods[row["method"]]
    task = ours.task or (study.tasks[row["task"]] if "task" in row else None)
    return model, method, task


def _factor(study: PublishedStudy, spec: FigureColumn) -> float:
    """Figure × factor = our unit: the column's own factor, else 1 (costs) or the study's scale (scores)."""
    if spec.factor is not None:
        return spec.factor
    return 1.0 if spec.metric in COST_METRICS else SCALE_FACTOR[study.scale]


def our_value(cell: pd.Series, metric: str) -> float | None:
    """A chosen cell's value for `metric`: its test mean, or a cost column (None when it has none)."""
    if metric == "train_hours_per_epoch":
        seconds, epochs = cell.get("train_seconds"), cell.get("epochs_done")
        value = seconds / epochs / 3600 if _number(seconds) and _number(epochs) and epochs > 0 else None
    else:
        value = cell.get(metric if metric in COST_METRICS else f"test_{metric}")
    return float(value) if _number(value) else None


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and not math.isnan(value)
