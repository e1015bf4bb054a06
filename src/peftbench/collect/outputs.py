"""What `peftbench collect` writes: every run as results.parquet and results.csv, the summary table as
table.md, and the unreadable result files as unreadable.json, written all or none: on a full or
read-only disk (core's CannotWrite) the four files are left as they were.

Merging and choosing (`merge`) never write; this module writes what they produced, so a report
(`report`) and the `collect` verb write the same files the same way.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from peftbench.collect.comparison import comparison_tables
from peftbench.collect.formats import to_markdown
from peftbench.collect.judge_agreement import agreement_table
from peftbench.collect.merge import Collection, Selection, collect, marked_best, selection_of
from peftbench.collect.stats import IntervalMethod
from peftbench.collect.tables import summary_table
from peftbench.core.files import write_paths_atomic
from peftbench.core.judge_settings import JudgeSettings

if TYPE_CHECKING:
    import pandas as pd


@dataclass
class CollectReport:
    table: str
    n_results: int
    n_success: int
    unreadable: list[str]
    outputs: list[Path]
    unfinished: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    not_successful: dict[str, int] = field(default_factory=dict)  # status -> runs, e.g. {"interrupted": 1}

    def counts(self) -> str:
        """'7 successful of 9 results (1 failed, 1 interrupted)'; the runs with no result yet are said apart
        (the CLI names their states)."""
        text = f"{self.n_success} successful of {self.n_results} results"
        if self.not_successful:
            text += " (" + ", ".join(f"{n} {status}" for status, n in self.not_successful.items()) + ")"
        return text


def write_collection(
    sweep_dirs: list[Path],
    out_dir: Path,
    interval_method: IntervalMethod = "t",
    confidence: float = 0.95,
    judge: JudgeSettings | None = None,
) -> CollectReport:
    """Merge the sweeps, write results.parquet, results.csv and table.md into `out_dir` atomically;
    judged answers by the sweep's judge, or `judge`."""
    collection = collect(sweep_dirs, judge)
    return save_collection(collection, selection_of(collection.frame, interval_method, confidence), out_dir)


def summary_markdown(collection: Collection, selection: Selection | None) -> str:
    """table.md: the summary table and the studies' paper tables, or why there is none yet."""
    best = marked_best(selection)
    if selection is None or best is None:
        return _why_no_table(collection, selection)
    tables = [summary_table(best, selection), *comparison_tables(collection.frame, best, selection)]
    tables += [t for t in [agreement_table(collection.frame)] if t is not None]
    return "\n".join(to_markdown(t) for t in tables)


def _why_no_table(collection: Collection, selection: Selection | None) -> str:
    if selection is not None and selection.skipped:  # successful runs, no cell chosen: e.g. not yet judged
        return "_No cell can be chosen yet:_\n" + "".join(f"- {why}\n" for why in selection.skipped)
    return "_No successful runs yet._\n" if len(collection.frame) else "_No results yet._\n"


def status_counts(frame: pd.DataFrame) -> tuple[int, dict[str, int]]:
    """(successful runs, {status: runs} of the others, by status name)."""
    if not len(frame):
        return 0, {}
    statuses = frame["status"].value_counts().sort_index()
    n_success = int((frame["status"] == "success").sum())
    return n_success, {str(status): int(n) for status, n in statuses.items() if status != "success"}


def save_collection(collection: Collection, selection: Selection | None, out_dir: Path) -> CollectReport:
    """results.parquet and results.csv (every run), table.md (the summary table), unreadable.json."""
    frame = collection.frame
    table = summary_markdown(collection, selection)
    outputs = [out_dir / "results.parquet", out_dir / "results.csv", out_dir / "table.md"]
    unreadable = json.dumps(collection.unreadable, indent=2, sort_keys=True) + "\n"
    write_paths_atomic(
        {
            outputs[0]: lambda tmp: frame.to_parquet(tmp, index=False),
            outputs[1]: lambda tmp: frame.to_csv(tmp, index=False),
            outputs[2]: lambda tmp: tmp.write_text(table, encoding="utf-8"),
            out_dir / "unreadable.json": lambda tmp: tmp.write_text(unreadable, encoding="utf-8"),
        }
    )
    n_success, not_successful = status_counts(frame)
    skipped = selection.skipped if selection is not None else []
    return CollectReport(
        table,
        len(frame),
        n_success,
        collection.unreadable,
        outputs,
        collection.unfinished,
        skipped,
        not_successful,
    )
