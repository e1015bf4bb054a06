"""`peftbench report`: one self-contained report.html, with the paper tables and plots as files beside it.

Everything the page shows is inside it: tables as HTML, plots as base64 PNG data URIs, CSS inline,
no script, nothing fetched. It opens from a shared folder (or an e-mail attachment) with no server.
Beside it: `tables/` (main, cost, scale as .md, .tex, .csv), `plots/` (.png, .svg),
results.parquet/.csv and table.md (as `collect` writes them) and, when asked, `submissions/`.

The page also says where the numbers came from (package versions, commits, lock and image hashes
of the runs, and of the checkout that wrote the report) and which runs are not in them: failed,
unfinished (no result yet: pending, running or lost), unreadable.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from peftbench.collect.comparison import comparison_tables
from peftbench.collect.formats import write_table
from peftbench.collect.halving_plot import halving_plots
from peftbench.collect.judge_agreement import agreement_table
from peftbench.collect.leaderboards import LEADERBOARDS, write_submissions
from peftbench.collect.merge import collect, marked_best, selection_of
from peftbench.collect.outputs import save_collection
from peftbench.collect.plots import Plot, make_plots
from peftbench.collect.report_page import ReportOutcome, render_report
from peftbench.collect.stats import INTERVAL_METHODS, IntervalMethod
from peftbench.collect.tables import paper_tables
from peftbench.core.errors import ConfigError, PeftbenchError, Problem, unknown_name
from peftbench.core.files import write_path_atomic

if TYPE_CHECKING:
    import pandas as pd

    from peftbench.collect.merge import Collection, Selection
    from peftbench.collect.table_model import Table

REPORT_FILE = "report.html"


class NoResults(PeftbenchError):
    """No readable result.json in the sweep folders: a report would be empty, so none is written."""


def refuse_no_results(sweep_dirs: list[Path], collection: Collection) -> None:
    """Raise NoResults, saying what the folders hold instead, when the collection has no result."""
    if not collection.frame.empty:
        return
    folders = ", ".join(str(d) for d in sweep_dirs)
    found = []
    if collection.unfinished:
        waiting = len(collection.unfinished)
        found.append(f"{waiting} run(s) without a result yet (`peftbench status` says why)")
    if collection.unreadable:
        found.append(f"{len(collection.unreadable)} unreadable result(s), e.g. {collection.unreadable[0]}")
    held = "; ".join(found) or "no run folders"
    raise NoResults(f"No results to report in {folders}: {held}. Nothing was written.")


def check_report_options(interval: str, leaderboards: list[str], tasks: list[str]) -> dict[str, str]:
    """The report command's options checked together; returns --task as {ours: theirs}."""
    where = "<command line>"
    problems = []
    if interval not in INTERVAL_METHODS:
        problems.append(unknown_name(where, "--interval", "interval", interval, INTERVAL_METHODS))
    problems += [
        unknown_name(where, "--submission", "leaderboard", b, LEADERBOARDS)
        for b in leaderboards
        if b not in LEADERBOARDS
    ]
    task_map = {}
    for text in tasks:
        ours, sep, theirs = text.partition("=")
        if sep and ours and theirs:
            task_map[ours] = theirs
        else:
            problems.append(
                Problem(where, "--task", f"Expected OURS=THEIRS, e.g. my_cola=cola (got {text!r}).")
            )
    if problems:
        raise ConfigError(problems)
    return task_map


def write_report(
    sweep_dirs: list[Path],
    out_dir: Path,
    interval_method: IntervalMethod = "t",
    confidence: float = 0.95,
    leaderboards: tuple[str, ...] = (),
    task_map: dict[str, str] | None = None,
    published: tuple[Path, ...] = (),
) -> ReportOutcome:
    """Collect the sweeps and write report.html, tables/, plots/ (and submissions/) into `out_dir`.

    The studies' published figures (shipped ones for these sweeps, plus `published` files) add the
    paper tables (`collect.comparison`). Raises NoResults, writing nothing, when there is no result."""
    collection = collect(sweep_dirs)
    refuse_no_results(sweep_dirs, collection)
    selection = selection_of(collection.frame, interval_method, confidence)
    saved = save_collection(collection, selection, out_dir)
    best = marked_best(selection)
    outcome = ReportOutcome(out_dir / REPORT_FILE, saved.n_results, saved.n_success)
    outcome.unreadable, outcome.unfinished = collection.unreadable, collection.unfinished
    outcome.problems += [f"Left out: {s}" for s in saved.skipped]
    tables = _write_tables(collection, selection, best, published, outcome)
    plots = _draw_plots(collection.frame, best, selection, outcome)
    halving = halving_plots(collection.frame, sweep_dirs, out_dir / "plots")  # searched cells only
    outcome.plots += [p for plot in halving for p in (plot.png, plot.svg)]
    plots += halving
    for board in leaderboards:
        _write_board(best, board, task_map, outcome)
    page = render_report(sweep_dirs, collection, selection, tables, plots, outcome)
    write_path_atomic(outcome.html, lambda tmp: Path(tmp).write_text(page, encoding="utf-8"))
    return outcome


def _write_tables(
    collection: Collection,
    selection: Selection | None,
    best: pd.DataFrame | None,
    published: tuple[Path, ...],
    outcome: ReportOutcome,
) -> list[Table]:
    """The paper tables and the studies' comparison tables, each as .md/.tex/.csv under tables/."""
    tables = paper_tables(best, selection) if best is not None and selection is not None else []
    tables += comparison_tables(collection.frame, best, selection, published)
    tables += [t for t in [agreement_table(collection.frame)] if t is not None]
    for table in tables:
        outcome.tables += write_table(table, outcome.html.parent / "tables")
    return tables


def _draw_plots(
    frame: pd.DataFrame, best: pd.DataFrame | None, selection: Selection | None, outcome: ReportOutcome
) -> list[Plot]:
    if best is None or selection is None:
        return []
    plots = make_plots(frame, best, selection, outcome.html.parent / "plots")
    outcome.plots = [p for plot in plots for p in (plot.png, plot.svg)]
    return plots


def _write_board(
    best: pd.DataFrame | None, board: str, task_map: dict[str, str] | None, outcome: ReportOutcome
) -> None:
    """One leaderboard's submission files under submissions/<board>/, or why there are none."""
    if best is None:
        outcome.problems.append(f"{board}: no successful runs to submit")
        return
    exported = write_submissions(best, board, outcome.html.parent / "submissions" / board, task_map)
    outcome.submissions += exported.written
    outcome.problems += exported.problems
