"""Successive halving of a sweep's grid (asynchronous, as ASHA: Li et al., MLSys 2020).

A run of a searched cell (model × task × method label) evaluates on validation at its rungs,
`min_budget × eta^k` of its training steps, and records its score in the sweep folder: one file per
run per rung (`<sweep>/.rungs/<cell>/<rung>/<run id>.json`, written atomically), so concurrent
runs never write the same file. It then continues only while it is in the top `1/eta` of the
scores recorded at that rung for its cell (`survives`); otherwise it ends with status `halted`.
Scores are compared as they arrive, without waiting for a round to fill: the first `eta - 1` runs at
a rung always continue (ASHA's stopping rule, as Ray Tune's ASHA scheduler applies it).

With `search_seeds`, the grid is searched on the first seeds only; each remaining seed has one
run per cell that trains the cell's winner (`trains_winner`): it becomes the winner's spec with its
own seed when it starts (`winner_spec`). A block whose `parent:` is a searched block starts from that
cell's winner on its own seed (`winner_parent`), found when it starts and kept in its folder.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote, unquote

from peftbench.core.directions import higher_is_better
from peftbench.core.errors import PeftbenchError, UnreadableFile
from peftbench.core.files import write_json_atomic
from peftbench.core.paths import RunPaths
from peftbench.core.results import RunResult, has_final_result, read_result, utc_now
from peftbench.core.spec import WINNER_SOURCE, RunSpec

RUNGS_FOLDER = ".rungs"
Decision = Literal["continue", "halt"]


class Halted(PeftbenchError):
    """A run that left the top 1/eta of its cell at a rung: it ends with status `halted`."""


def halt_reason(error: str | None) -> str:
    """The one line of a halted run's result that says where and why (its error's last line)."""
    last = (error or "").strip().splitlines()[-1:] or [""]
    return last[0].removeprefix(f"{Halted.__module__}.{Halted.__name__}: ")


class NoWinnerYet(PeftbenchError):
    """A seed run that trains its cell's winner, started before any search run of the cell finished."""


def cell_id(spec: RunSpec) -> str:
    """The cell a searched run competes in: its model, task and method label (12 hex digits)."""
    return cell_of(spec.model.name, spec.task.name, spec.label)


def cell_of(model: str, task: str, label: str) -> str:
    payload = json.dumps([model, task, label])
    return hashlib.sha256(payload.encode()).hexdigest()[:12]


def winner_source(grid: str, task: str, label: str) -> str:
    """The model source of a child of a searched block: the parent cell named by its block's label and
    task, with `grid` (a digest of the runs searched), never by the point that wins, so that the
    child's run id is known before the search has run."""
    return f"{WINNER_SOURCE}{grid}/{quote(task, safe='')}/{quote(label, safe='')}"


def parent_cell(spec: RunSpec) -> tuple[str, str] | None:
    """(task, label) of the searched block a child starts from (`winner_source`); None for any other run."""
    source = spec.model.source
    if not source.startswith(WINNER_SOURCE):
        return None
    _, task, label = source.removeprefix(WINNER_SOURCE).split("/")
    return unquote(task), unquote(label)


def parent_cell_id(spec: RunSpec) -> str | None:
    """The cell whose winner a child of a searched block starts from, or None."""
    found = parent_cell(spec)
    return cell_of(spec.model.name, *found) if found is not None else None


def rung_folder(sweep_dir: Path, spec: RunSpec, rung: int) -> Path:
    return Path(sweep_dir) / RUNGS_FOLDER / cell_id(spec) / f"rung-{rung}"


def rung_record_path(sweep_dir: Path, spec: RunSpec, rung: int) -> Path:
    """This run's record at this rung: its own file, never shared with another run."""
    return rung_folder(sweep_dir, spec, rung) / f"{spec.run_id}.json"


def write_rung_record(path: Path, record: dict[str, Any]) -> None:
    write_json_atomic(path, record, durable=False)


def read_rung_record(path: Path) -> dict[str, Any] | None:
    """A rung record, or None when it is missing or cut short (a record is rewritten, never appended)."""
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) and isinstance(record.get("score"), (int, float)) else None


def rung_scores(folder: Path) -> dict[str, float]:
    """Run id -> score of every readable record at one rung of one cell."""
    records = (read_rung_record(p) for p in sorted(Path(folder).glob("*.json")))
    return {str(r["run_id"]): float(r["score"]) for r in records if r is not None}


def survives(own: float, scores: list[float], eta: int, higher: bool) -> bool:
    """Whether `own` is in the top 1/eta of `scores` (which include it); fewer than eta: it survives.

    Ties count in the run's favour: its rank is one more than the scores strictly better than it.
    """
    if len(scores) < eta:
        return True
    better: Callable[[float], bool] = (lambda s: s > own) if higher else (lambda s: s < own)
    rank = 1 + sum(1 for s in scores if better(s))
    return rank <= len(scores) // eta


def all_rung_records(sweep_dir: Path) -> list[dict[str, Any]]:
    """Every rung record of a sweep (for the report's halving picture), with its cell."""
    out = []
    for path in sorted((Path(sweep_dir) / RUNGS_FOLDER).glob("*/rung-*/*.json")):
        record = read_rung_record(path)
        if record is not None:
            out.append({**record, "cell": path.parent.parent.name})
    return out


def winner_spec(sweep_dir: Path, spec: RunSpec) -> RunSpec:
    """The run a `trains_winner` run becomes: its cell's best search run that trained its full budget
    (by the validation selection metric), with this run's seed and no search. NoWinnerYet if none."""
    best = cell_winner(Path(sweep_dir), cell_id(spec))
    if best is None:
        raise NoWinnerYet(
            f"run {spec.run_id} trains the winner of {spec.model.name} · {spec.task.name} · {spec.label}, "
            f"but no search run of that cell has finished in {sweep_dir}: run the search first."
        )
    return best.spec.model_copy(update={"seed": spec.seed, "search": None, "sweep": spec.sweep})


def cell_winner(sweep_dir: Path, cell: str) -> RunResult | None:
    """The cell's winner: its best search run that trained its full budget, by the validation selection
    metric (ties: the first run id); None while it has none."""
    found = _search_results(Path(sweep_dir), cell)
    results = [r for r in found if r.spec.task.metric in r.validation]
    if not results:
        return None
    metric = results[0].spec.task.metric  # one cell, one task
    sign = 1.0 if higher_is_better(metric) else -1.0
    return max(results, key=lambda r: sign * r.validation[metric])


def _search_results(sweep_dir: Path, cell: str) -> list[RunResult]:
    """The success results of the search runs of `cell` (halted ones never reached the end)."""
    found = []
    for path in sorted(sweep_dir.glob("*/result.json")):
        try:
            result = read_result(path)
        except UnreadableFile:
            continue
        search = result.spec.search
        searched = search is not None and not search.trains_winner
        if result.status == "success" and searched and cell_id(result.spec) == cell:
            found.append(result)
    return sorted(found, key=lambda r: r.run_id)


def winner_parent(sweep_dir: Path, spec: RunSpec) -> str:
    """The run id a child of a searched block starts from: its parent cell's winning point on the
    child's seed — the search run itself on a seed that searched, else the run that trained the winner
    on that seed. NoWinnerYet, one line naming the cell, while that run has no success result."""
    task, label = parent_cell(spec) or ("", "")
    where = f"{spec.model.name} · {task} · {label}"
    best = cell_winner(Path(sweep_dir), cell_of(spec.model.name, task, label))
    if best is None:
        raise NoWinnerYet(
            f"run {spec.run_id} starts from the winner of {where}, but no search run of that cell has "
            f"trained its full budget in {sweep_dir}: run the search first."
        )
    searched = best.spec.model_copy(update={"seed": spec.seed})
    for candidate in (searched, searched.model_copy(update={"search": None})):
        if _succeeded(RunPaths(Path(sweep_dir) / candidate.run_id)):
            return candidate.run_id
    if has_final_result(RunPaths(Path(sweep_dir) / searched.run_id)):  # halted: it never will succeed
        why = f"was halted on seed {spec.seed} (run {searched.run_id}): give the block `search_seeds`"
    else:
        why = f"has no successful run on seed {spec.seed} in {sweep_dir} yet: train it first"
    raise NoWinnerYet(
        f"run {spec.run_id} starts from the winner of {where} (the point of run {best.run_id}), which {why}."
    )


def _succeeded(paths: RunPaths) -> bool:
    try:
        return read_result(paths.result).status == "success"
    except UnreadableFile:
        return False


def resolve_parent(spec: RunSpec, sweep_dir: Path) -> None:
    """For a child of a searched block, the run it starts from (`winner_parent`) recorded in its folder
    (`RunPaths.started_from`), where run/incremental.py reads it. Found once: a resumed or rerun child
    keeps the parent it started from while that run stays a success."""
    paths = RunPaths(Path(sweep_dir) / spec.run_id)
    kept = started_from(paths)
    if kept is not None and _succeeded(RunPaths(Path(sweep_dir) / kept)):
        return
    pointer = {"run_id": winner_parent(sweep_dir, spec), "child": spec.run_id}
    write_json_atomic(paths.started_from, pointer, durable=False)


def resolve_run(spec: RunSpec, sweep_dir: Path) -> RunSpec:
    """The run to train for `spec`: itself, or for a run that trains its cell's winner, the winner's
    spec with its seed (`winner_spec`), recorded in its folder (`RunPaths.winner`) for `status`. A child
    of a searched block gets the run it starts from recorded first (`resolve_parent`)."""
    resolved = spec
    if spec.search is not None and spec.search.trains_winner:
        resolved = winner_spec(sweep_dir, spec)
        pointer = {"run_id": resolved.run_id, "trains_winner_of": spec.run_id}
        write_json_atomic(RunPaths(Path(sweep_dir) / spec.run_id).winner, pointer, durable=False)
    if parent_cell(resolved) is not None:
        resolve_parent(resolved, sweep_dir)
    return resolved


def resolved_run_id(paths: RunPaths) -> str | None:
    """The run id a `trains_winner` run became when it started, or None if it has not started."""
    return _pointer(paths.winner)


def started_from(paths: RunPaths) -> str | None:
    """The run a child of a searched block starts from, or None before it has first started."""
    return _pointer(paths.started_from)


def _pointer(path: Path) -> str | None:
    try:
        found = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    run_id = found.get("run_id") if isinstance(found, dict) else None
    return run_id if isinstance(run_id, str) else None


def no_winner_result(spec: RunSpec, err: NoWinnerYet) -> RunResult:
    """The failed result a run that trains its cell's winner leaves in its own folder when it started
    before any search run of its cell finished (`resubmit` runs it again)."""
    now = utc_now()
    return RunResult(
        run_id=spec.run_id, status="failed", spec=spec, error=str(err), started_at=now, finished_at=now
    )
