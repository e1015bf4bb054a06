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

import base64
import html
import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from peftbench.collect.comparison import comparison_tables
from peftbench.collect.formats import to_html, write_table
from peftbench.collect.merge import (
    Collection,
    Selection,
    collect,
    mark_best_per_task,
    save_collection,
    select_cells,
)
from peftbench.collect.plots import Plot, make_plots
from peftbench.collect.stats import INTERVAL_METHODS, IntervalMethod
from peftbench.collect.tables import Table, paper_tables
from peftbench.core.errors import ConfigError, Problem, unknown_name

REPORT_FILE = "report.html"


HEADLINE_PROVENANCE = (
    "peftbench_version",
    "git_commit",
    "git_dirty",
    "lock_sha256",
    "image",
    "image_sha256",
    "python",
    "device",
)


MAX_LISTED_VALUES = 6


@dataclass
class ReportOutcome:
    html: Path
    n_results: int
    n_success: int
    tables: list[Path] = field(default_factory=list)
    plots: list[Path] = field(default_factory=list)
    submissions: list[Path] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    unreadable: list[str] = field(default_factory=list)
    unfinished: list[str] = field(default_factory=list)

    def summary(self) -> str:
        """What the command prints: counts and where everything went."""
        lines = [
            f"{self.n_success} successful of {self.n_results} results; {len(self.unfinished)} unfinished, "
            f"{len(self.unreadable)} unreadable.",
            f"Report: {self.html}",
            f"Tables: {len(self.tables)} files in {self.html.parent / 'tables'}; "
            f"plots: {len(self.plots)} files in {self.html.parent / 'plots'}.",
        ]
        if self.submissions:
            lines.append(f"Submissions: {len(self.submissions)} files in {self.html.parent / 'submissions'}.")
        return "\n".join(lines)


def check_report_options(interval: str, leaderboards: list[str], tasks: list[str]) -> dict[str, str]:
    """The report command's options checked together; returns --task as {ours: theirs}."""
    from peftbench.collect.leaderboards import LEADERBOARDS

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
    paper tables (`collect.comparison`)."""
    from peftbench.core.files import write_path_atomic

    collection = collect(sweep_dirs)
    selection = select_cells(collection.frame, interval_method, confidence) if len(collection.frame) else None
    saved = save_collection(collection, selection, out_dir)
    best = mark_best_per_task(selection.best) if selection is not None and len(selection.best) else None
    tables = paper_tables(best, selection) if best is not None else []
    tables += comparison_tables(collection.frame, best, selection, published)
    outcome = ReportOutcome(out_dir / REPORT_FILE, saved.n_results, saved.n_success)
    outcome.unreadable, outcome.unfinished = collection.unreadable, collection.unfinished
    outcome.problems += [f"Left out: {s}" for s in saved.skipped]
    for table in tables:
        outcome.tables += write_table(table, out_dir / "tables")
    plots = make_plots(collection.frame, best, selection, out_dir / "plots") if best is not None else []
    outcome.plots = [p for plot in plots for p in (plot.png, plot.svg)]
    for board in leaderboards:
        from peftbench.collect.leaderboards import write_submissions

        if best is None:
            outcome.problems.append(f"{board}: no successful runs to submit")
            continue
        exported = write_submissions(best, board, out_dir / "submissions" / board, task_map)
        outcome.submissions += exported.written
        outcome.problems += exported.problems
    page = render_report(sweep_dirs, collection, selection, tables, plots, outcome)
    write_path_atomic(outcome.html, lambda tmp: Path(tmp).write_text(page, encoding="utf-8"))
    return outcome


def render_report(
    sweep_dirs: list[Path],
    collection: Collection,
    selection: Selection | None,
    tables: list[Table],
    plots: list[Plot],
    outcome: ReportOutcome,
) -> str:
    names = ", ".join(Path(d).name for d in sweep_dirs)
    sections = [
        _summary_section(collection, selection, outcome),
        _tables_section(tables),
        _plots_section(plots),
        _not_counted_section(collection, outcome),
        _provenance_section(collection.frame, sweep_dirs),
    ]
    return PAGE.format(
        title=html.escape(f"peftbench report: {names}"),
        style=STYLE,
        body="\n".join(s for s in sections if s),
    )


def energy_fact(frame: Any) -> str:
    """The energy of every result read (NVML; packed runs' estimated shares), or why there is none."""
    if not len(frame) or "energy_wh" not in frame:
        return "not measured"
    measured = frame["energy_wh"].dropna()
    if measured.empty:
        notes = sorted({str(n) for n in frame.get("energy_note", []) if isinstance(n, str)})
        return "not measured" + (f" ({'; '.join(notes)})" if notes else "")
    return f"{measured.sum():.4g} Wh over {len(measured)} of {len(frame)} runs (docs/packing.md: how)"


def _summary_section(collection: Collection, selection: Selection | None, outcome: ReportOutcome) -> str:
    frame = collection.frame
    failed = outcome.n_results - outcome.n_success
    cells = len(selection.best) if selection is not None else 0
    how = "none (no successful runs)"
    if selection is not None:
        kind = "Student t" if selection.interval == "t" else "percentile bootstrap (10,000 resamples, seed 0)"
        how = f"{100 * selection.confidence:g}% {kind} interval of the mean over seeds"
    seeds = f"{int(frame['seed'].nunique())} distinct" if len(frame) else "none"
    one_class = 0
    if selection is not None and "collapsed_seeds" in selection.best:
        one_class = int((selection.best["collapsed_seeds"] > 0).sum())
    facts = [
        ("results read", outcome.n_results),
        ("successful", outcome.n_success),
        ("not successful", failed),
        ("unfinished (no result.json)", len(outcome.unfinished)),
        ("unreadable result.json", len(outcome.unreadable)),
        ("cells (model × method × task)", cells),
        ("seeds", seeds),
        ("cells predicting one class (⚠)", one_class),
        ("intervals", how),
        ("GPU energy, all results", energy_fact(frame)),
    ]
    rows = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(str(v))}</td></tr>" for k, v in facts)
    return (
        '<section id="summary"><h2>Summary</h2>\n'
        f'<table class="facts">{rows}</table>\n'
        "<p>Each cell's hyper-parameter point is the one with the best <em>mean validation</em> metric over "
        "its seeds, in the direction the metric says is better; test numbers are read only for that "
        "point. Nothing is ever chosen on test.</p></section>"
    )


def _tables_section(tables: list[Table]) -> str:
    if not tables:
        return '<section id="tables"><h2>Tables</h2><p>No successful runs yet.</p></section>'
    parts = ['<section id="tables"><h2>Tables</h2>']
    for table in tables:
        links = " · ".join(f'<a href="tables/{table.name}.{ext}">{ext}</a>' for ext in ("md", "tex", "csv"))
        parts.append(f'<div class="table-wrap">{to_html(table)}<p class="files">Files: {links}</p></div>')
    parts.append("</section>")
    return "\n".join(parts)


def _plots_section(plots: list[Plot]) -> str:
    if not plots:
        return ""
    parts = ['<section id="plots"><h2>Plots</h2>']
    for plot in plots:
        data = base64.b64encode(plot.png.read_bytes()).decode("ascii")
        parts.append(
            f'<figure id="plot-{plot.name}"><img src="data:image/png;base64,{data}" '
            f'alt="{html.escape(plot.title)}">'
            f"<figcaption><strong>{html.escape(plot.title)}.</strong> {html.escape(plot.caption)} "
            f'<a href="plots/{plot.name}.svg">SVG</a></figcaption></figure>'
        )
    parts.append("</section>")
    return "\n".join(parts)


def _not_counted_section(collection: Collection, outcome: ReportOutcome) -> str:
    frame = collection.frame
    parts = ['<section id="not-counted"><h2>Runs not in the numbers</h2>']
    failed = frame[frame["status"] != "success"] if len(frame) else frame
    if len(failed):
        header = ("run", "model", "task", "method", "seed", "status", "last line of the error", "folder")
        rows = "".join(
            "<tr>"
            + "".join(
                f"<td>{html.escape(_text(r.get(k)))}</td>"
                for k in ("run_id", "model", "task", "method", "seed", "status", "error_summary", "run_dir")
            )
            + "</tr>\n"
            for _, r in failed.iterrows()
        )
        head = "".join(f"<th>{h}</th>" for h in header)
        parts.append(
            f'<h3>Did not succeed ({len(failed)})</h3>\n<table id="failed-runs"><thead><tr>{head}</tr>'
            f"</thead><tbody>{rows}</tbody></table>"
        )
    if outcome.unfinished:
        items = "".join(f"<li>{html.escape(_describe_unfinished(d))}</li>" for d in outcome.unfinished)
        parts.append(
            f"<h3>Unfinished: a spec but no result ({len(outcome.unfinished)})</h3>\n"
            "<p>Still pending or running, or lost (the job died without writing a result); "
            "<code>peftbench status</code> tells which.</p>"
            f'<ul id="unfinished-runs">{items}</ul>'
        )
    if outcome.unreadable:
        items = "".join(f"<li>{html.escape(u)}</li>" for u in outcome.unreadable)
        parts.append(f"<h3>Unreadable result.json ({len(outcome.unreadable)})</h3><ul>{items}</ul>")
    if outcome.problems:
        items = "".join(f"<li>{html.escape(p)}</li>" for p in outcome.problems)
        parts.append(f'<h3>Notes and problems</h3><ul id="problems">{items}</ul>')
    if len(parts) == 1:
        parts.append("<p>None: every run folder has a successful, readable result.</p>")
    parts.append("</section>")
    return "\n".join(parts)


def _describe_unfinished(run_dir: str) -> str:
    from peftbench.core.paths import RunPaths
    from peftbench.core.results import read_spec

    try:
        spec = read_spec(RunPaths(Path(run_dir)).spec)
    except Exception:  # a spec we cannot read is still listed, by its folder
        return run_dir
    return (
        f"{spec.run_id}: {spec.model.name} · {spec.task.name} · {spec.label} · seed {spec.seed} ({run_dir})"
    )


def _text(value: Any) -> str:
    if value is None or (isinstance(value, float) and value != value):
        return "–"
    return str(value)


def provenance_values(frame: Any) -> dict[str, Counter]:
    """Per provenance key (packages flattened to `packages.<name>`), how many runs had each value."""
    values: dict[str, Counter] = {}
    column = frame.get("provenance", [])
    for text in column:
        if not isinstance(text, str):
            continue
        record = json.loads(text)
        packages = record.pop("packages", {}) or {}
        record.update({f"packages.{k}": v for k, v in packages.items()})
        record.pop("seed", None)
        for key, value in record.items():
            values.setdefault(key, Counter())[_text(value)] += 1
    return values


def _provenance_section(frame: Any, sweep_dirs: list[Path]) -> str:
    values = provenance_values(frame)
    keys = [k for k in HEADLINE_PROVENANCE] + sorted(k for k in values if k not in HEADLINE_PROVENANCE)
    rows = []
    for key in keys:
        counts = values.get(key)
        if not counts:
            shown = "not recorded" if key in HEADLINE_PROVENANCE else ""
        elif len(counts) > MAX_LISTED_VALUES:
            examples = ", ".join(v for v, _ in counts.most_common(3))
            shown = f"{len(counts)} distinct values (most common: {examples})"
        else:
            shown = "; ".join(f"{v} ({n} run{'s' if n != 1 else ''})" for v, n in counts.most_common())
        rows.append(f"<tr><th>{html.escape(key)}</th><td>{html.escape(shown)}</td></tr>")
    this = _this_report()
    folders = ", ".join(str(d) for d in sweep_dirs)
    return (
        '<section id="provenance"><h2>Provenance</h2>\n'
        "<h3>The runs</h3>\n"
        f'<table class="facts" id="run-provenance">{"".join(rows)}</table>\n'
        "<h3>This report</h3>\n"
        f'<table class="facts"><tr><th>written</th><td>{html.escape(this["written"])}</td></tr>'
        f"<tr><th>by peftbench</th><td>{html.escape(this['version'])}</td></tr>"
        f"<tr><th>from checkout</th><td>{html.escape(this['commit'])}</td></tr>"
        f"<tr><th>sweep folders</th><td>{html.escape(folders)}</td></tr></table>\n"
        "</section>"
    )


def _this_report() -> dict[str, str]:
    from peftbench import __version__
    from peftbench.core.results import utc_now

    try:
        from peftbench.core.checkout import git_state

        commit, dirty = git_state()
    except Exception:  # provenance of the report itself is best effort
        commit, dirty = None, None
    text = "not a git checkout" if commit is None else commit + (" (uncommitted changes)" if dirty else "")
    return {"written": utc_now(), "version": __version__, "commit": text}


STYLE = """
:root { --ink: #1d2330; --muted: #5b6475; --line: #d9dde5; --band: #f5f7fa; --accent: #2457a6; }
* { box-sizing: border-box; }
body { font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "Noto Sans", sans-serif;
       color: var(--ink); margin: 0 auto; max-width: 1320px; padding: 24px 32px 64px; }
h1 { font-size: 26px; margin: 0 0 4px; } h2 { font-size: 20px; margin: 40px 0 12px;
  border-bottom: 2px solid var(--line); padding-bottom: 4px; } h3 { font-size: 16px; margin: 24px 0 8px; }
nav a { margin-right: 16px; color: var(--accent); text-decoration: none; }
.meta, .note, .files, figcaption { color: var(--muted); font-size: 13px; }
table { border-collapse: collapse; margin: 8px 0; font-variant-numeric: tabular-nums; }
caption { text-align: left; font-weight: 600; padding: 4px 0; }
th, td { padding: 4px 7px; font-size: 14px; border-bottom: 1px solid var(--line); vertical-align: top; }
thead th { border-bottom: 2px solid var(--ink); text-align: left; vertical-align: bottom;
  overflow-wrap: normal; hyphens: manual; }
tbody tr:nth-child(even) { background: var(--band); }
td.num { text-align: right; white-space: nowrap; } td.text { white-space: normal; }
.one-class { color: #b00020; font-weight: 600; white-space: nowrap; }
p.one-class-note { color: #b00020; }
table.facts th { text-align: left; font-weight: 600; white-space: nowrap; }
.table-wrap { overflow-x: auto; margin-bottom: 24px; }
figure { margin: 16px 0 32px; } figure img { max-width: 100%; height: auto; border: 1px solid var(--line); }
code { background: var(--band); padding: 0 4px; border-radius: 3px; }
#failed-runs td { font-size: 13px; }
"""


PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,">
<title>{title}</title>
<style>{style}</style>
</head>
<body>
<header><h1>{title}</h1>
<nav><a href="#summary">Summary</a><a href="#tables">Tables</a><a href="#plots">Plots</a>
<a href="#not-counted">Not counted</a><a href="#provenance">Provenance</a></nav></header>
<main>
{body}
</main>
</body>
</html>
"""
