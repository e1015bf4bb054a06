"""Leaderboard submission files made from runs' test predictions: HuLU and SloBench.

There is no network here to read the leaderboards' sites, so each format follows the leaderboard's
own published code, named in `Leaderboard.format_source`; docs/results.md says what that does and
does not settle. For every model × method row of the report, the run used for a task is the seed
best on VALIDATION of the point chosen on validation (`selected_run_id`), never a test-picked one.

- hulu: one `<task>_predicted_labels.json` per task (the site takes one file at a time): a JSON
  list of {"id": "<position in the test split>", "label": ...}; SST and CB labels by name, the
  others as the class index in text ("0", "1").
- slobench-superglue: `submission.zip` of BoolQ/CB/COPA/MultiRC/RTE/WSC `.jsonl` files, each line
  {"idx": <the example's idx>, "label": ...}. MultiRC (nested answers) is not a classification task
  here, and the evaluator rejects a zip without it: that is reported, never faked.
- slobench-si-nli: `submission.zip` holding `submission.txt`, one label name per line, in test order.
"""

from __future__ import annotations

import json
import re
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from peftbench.core.errors import PeftbenchError
from peftbench.core.files import write_path_atomic, write_text_atomic
from peftbench.core.predictions import (
    PREDICTIONS_FILE,
    Prediction,
    UnreadablePredictions,
    predictions_path,
    read_predictions,
)
from peftbench.core.results import UnreadableResult, read_result

if TYPE_CHECKING:
    import pandas as pd

Encoding = Literal["name", "index", "index_text", "bool"]


NLI3 = ("entailment", "neutral", "contradiction")


@dataclass(frozen=True)
class LeaderboardTask:
    """One task of a leaderboard: its name there, its file, and how a predicted class is written."""

    key: str
    file: str
    encoding: Encoding
    allowed: tuple[str, ...] = ()  # the label names the leaderboard accepts (encoding "name")
    aliases: tuple[str, ...] = ()  # our task names that map here without --task
    needs_id: bool = False  # lines carry the example's own id (else its position)


Encoded = dict[LeaderboardTask, list[tuple[Prediction, Any]]]  # a board task -> its encoded predictions


@dataclass(frozen=True)
class Leaderboard:
    name: str
    url: str
    format_source: str
    tasks: tuple[LeaderboardTask, ...]
    write: Callable[[Path, Encoded], list[Path]]
    required: tuple[str, ...] = ()  # task keys its evaluator refuses to score without


def _hulu_write(folder: Path, encoded: Encoded) -> list[Path]:
    written = []
    for task, rows in encoded.items():
        path = folder / task.file
        payload = [{"id": str(p.index), "label": value} for p, value in rows]
        text = json.dumps(payload, indent=4, ensure_ascii=False) + "\n"
        write_text_atomic(path, lambda f, text=text: f.write(text), durable=False)
        written.append(path)
    return written


def _superglue_write(folder: Path, encoded: Encoded) -> list[Path]:
    files = {}
    for task, rows in encoded.items():
        files[task.file] = "".join(json.dumps({"idx": p.id, "label": value}) + "\n" for p, value in rows)
    return _write_zip(folder, files)


def _lines_write(folder: Path, encoded: Encoded) -> list[Path]:
    return _write_zip(folder, {t.file: "".join(f"{v}\n" for _p, v in rows) for t, rows in encoded.items()})


def _write_zip(folder: Path, files: dict[str, str]) -> list[Path]:
    """Each file beside the zip (to read) and in `submission.zip`, at its root, nothing else in it."""
    written = []
    for name, text in files.items():
        write_text_atomic(folder / name, lambda f, text=text: f.write(text), durable=False)
        written.append(folder / name)
    archive = folder / "submission.zip"

    def write_zip(tmp: Path) -> None:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as z:
            for name, text in sorted(files.items()):
                z.writestr(name, text)

    write_path_atomic(archive, write_zip, durable=False)
    return [*written, archive]


def _hulu(key: str, encoding: Encoding, allowed: tuple[str, ...] = (), *aliases: str) -> LeaderboardTask:
    return LeaderboardTask(key, f"{key}_predicted_labels.json", encoding, allowed, aliases)


def _superglue(key: str, encoding: Encoding, allowed: tuple[str, ...] = (), *aliases: str) -> LeaderboardTask:
    return LeaderboardTask(key, f"{key}.jsonl", encoding, allowed, aliases, needs_id=True)


LEADERBOARDS: dict[str, Leaderboard] = {
    board.name: board
    for board in [
        Leaderboard(
            "hulu",
            "https://hulu.nytud.hu/",
            "github.com/nytud/HuLU-evaluate src/train/train.py create_submission + helper.write_submission",
            (
                _hulu("cola", "index_text", (), "hucola"),
                _hulu("sst", "name", ("neutral", "positive", "negative"), "husst"),
                _hulu("rte", "index_text", (), "hurte"),
                _hulu("wnli", "index_text", (), "huwnli"),
                _hulu("cb", "name", ("entailment", "contradiction", "neutral"), "hucb", "hucommitmentbank"),
                _hulu("copa", "index_text", (), "hucopa"),
            ),
            _hulu_write,
        ),
        Leaderboard(
            "slobench-superglue",
            "https://slobench.cjvt.si/",
            "github.com/clarinsi/slobench-eval-docker evaluation_scripts/eval_question_answering",
            (
                _superglue("BoolQ", "bool", (), "slo_boolq", "sl_boolq"),
                _superglue("CB", "name", ("neutral", "contradiction", "entailment"), "slo_cb", "sl_cb"),
                _superglue("COPA", "index", (), "slo_copa", "sl_copa"),
                _superglue("RTE", "name", ("entailment", "not_entailment"), "slo_rte", "sl_rte"),
                _superglue("WSC", "bool", (), "slo_wsc", "sl_wsc"),
            ),
            _superglue_write,
            required=("BoolQ", "CB", "COPA", "MultiRC", "RTE", "WSC"),
        ),
        Leaderboard(
            "slobench-si-nli",
            "https://slobench.cjvt.si/",
            "github.com/clarinsi/slobench-eval-docker evaluation_scripts/eval_sequence_pair_classification",
            (LeaderboardTask("SI-NLI", "submission.txt", "name", NLI3, ("si_nli", "sinli", "slo_nli")),),
            _lines_write,
        ),
    ]
}


def task_for(board: Leaderboard, task_name: str, overrides: dict[str, str]) -> LeaderboardTask | None:
    """The leaderboard task our task maps to: `overrides` (ours → theirs) first, then known aliases."""
    wanted = overrides.get(task_name)
    for task in board.tasks:
        if wanted is not None:
            if _norm(wanted) == _norm(task.key):
                return task
        elif _norm(task_name) in {_norm(a) for a in task.aliases}:
            return task
    return None


def _norm(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


class EncodingError(PeftbenchError, ValueError):
    """A prediction the leaderboard's format cannot express (unknown label name, missing id, ...)."""


def encode(task: LeaderboardTask, labels: list[str], prediction: Prediction) -> Any:
    """A predicted class as the leaderboard writes it."""
    if prediction.label >= len(labels):
        raise EncodingError(
            f"example {prediction.index}: label index {prediction.label} but only {len(labels)} labels"
        )
    name = labels[prediction.label]
    if task.needs_id and prediction.id is None:
        raise EncodingError(
            f"example {prediction.index} has no id; {task.key} matches predictions by the data's idx"
        )
    if task.encoding == "index":
        return prediction.label
    if task.encoding == "index_text":
        return str(prediction.label)
    if task.encoding == "bool":
        if name.lower() not in {"true", "false"}:
            raise EncodingError(f"{task.key} wants true/false; the task's labels are {labels}")
        return name.lower() == "true"
    if task.allowed and name.lower() not in task.allowed:
        raise EncodingError(f"label {name!r} is not one {task.key} accepts: {', '.join(task.allowed)}")
    return name.lower()


@dataclass
class SubmissionOutcome:
    """What one leaderboard export wrote, and every reason something could not be written."""

    written: list[Path] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def write_submissions(
    best: pd.DataFrame, board_name: str, out_dir: Path, task_map: dict[str, str] | None = None
) -> SubmissionOutcome:
    """For each model × method of `best` (from select_cells), the leaderboard's files under
    `out_dir/<model>--<method>/`, from each mapped task's `selected_run_dir`."""
    board = LEADERBOARDS[board_name]
    outcome = SubmissionOutcome()
    overrides = task_map or {}
    mapped = {t: lt for t in dict.fromkeys(best["task"]) if (lt := task_for(board, t, overrides)) is not None}
    if not mapped:
        known = ", ".join(f"{t.key} ({', '.join(t.aliases)})" for t in board.tasks)
        outcome.problems.append(
            f"{board.name}: no task of these results maps to it; known: {known}; use --task ours=theirs"
        )
        return outcome
    for (model, method), cells in best.groupby(["model", "method"], sort=True):
        where = f"{board.name} {model} · {method}"
        encoded = _encoded_row(cells, mapped, where, outcome)
        if not encoded:
            continue
        outcome.problems += _missing_required(board, encoded, where)
        folder = out_dir / f"{_safe(model)}--{_safe(method)}"
        folder.mkdir(parents=True, exist_ok=True)
        outcome.written += board.write(folder, encoded)
    return outcome


def _encoded_row(
    cells: pd.DataFrame, mapped: dict[str, LeaderboardTask], where: str, outcome: SubmissionOutcome
) -> Encoded:
    """A model × method's predictions for each of its tasks the board has (a task that fails is left out)."""
    encoded: Encoded = {}
    for _, cell in cells.iterrows():
        task = mapped.get(cell["task"])
        if task is None:
            continue
        rows = _encoded_cell(cell, task, f"{where} · {cell['task']}", outcome)
        if rows is not None:
            encoded[task] = rows
    return encoded


def _missing_required(board: Leaderboard, encoded: Encoded, where: str) -> list[str]:
    missing = [k for k in board.required if k not in {t.key for t in encoded}]
    if not missing:
        return []
    return [f"{where}: no {', '.join(missing)}; its evaluator rejects a submission without them"]


def _encoded_cell(
    cell: pd.Series, task: LeaderboardTask, where: str, outcome: SubmissionOutcome
) -> list[tuple[Prediction, Any]] | None:
    run_dir = Path(str(cell["selected_run_dir"]))
    try:
        spec = read_result(run_dir / "result.json").spec
        predictions = read_predictions(predictions_path(run_dir))
    except (UnreadablePredictions, UnreadableResult) as err:
        outcome.problems.append(f"{where}: {err}")
        return None
    if spec.training.max_eval_samples is not None:
        outcome.problems.append(f"{where}: test was cut to max_eval_samples={spec.training.max_eval_samples}")
        return None
    if [p.index for p in predictions] != list(range(len(predictions))):
        outcome.problems.append(f"{where}: indices in {PREDICTIONS_FILE} are not 0..n-1 in order")
        return None
    try:
        return [(p, encode(task, spec.task.labels, p)) for p in predictions]
    except EncodingError as err:
        outcome.problems.append(f"{where}: {err}")
        return None


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name)
