"""report.html as text: the page `report.write_report` writes, from what it collected and drew.

Everything the page shows is inside it: tables as HTML (`formats.to_html`), plots as base64 PNG
data URIs, CSS inline, no script, nothing fetched. Its sections: a summary of the counts and the
selection rule, the tables, the plots, the runs not in the numbers (failed, unfinished, unreadable,
and the problems met while writing) and provenance (of the runs, and of this report).
"""

from __future__ import annotations

import base64
import html
import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from peftbench.collect.formats import to_html
from peftbench.collect.merge import Collection, Selection
from peftbench.collect.plots import Plot
from peftbench.collect.search_summary import protocol_lines, search_cells
from peftbench.collect.table_model import MISSING, Table, is_missing

if TYPE_CHECKING:
    import pandas as pd

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
        _search_section(collection.frame),
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


def energy_fact(frame: pd.DataFrame) -> str:
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
    return (
        '<section id="summary"><h2>Summary</h2>\n'
        f'<table class="facts">{_facts_rows([(k, str(v)) for k, v in facts])}</table>\n'
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


FAILED_RUN_COLUMNS = (
    ("run", "run_id"),
    ("model", "model"),
    ("task", "task"),
    ("method", "method"),
    ("seed", "seed"),
    ("status", "status"),
    ("last line of the error", "error_summary"),
    ("folder", "run_dir"),
)


NOTHING_LEFT_OUT = "<p>None: every run folder has a successful, readable result.</p>"


def _not_counted_section(collection: Collection, outcome: ReportOutcome) -> str:
    parts = [
        _failed_runs(collection.frame),
        _unfinished_runs(outcome.unfinished),
        _listed(f"Unreadable result.json ({len(outcome.unreadable)})", "", outcome.unreadable),
        _listed("Notes and problems", ' id="problems"', outcome.problems),
    ]
    body = "\n".join(p for p in parts if p) or NOTHING_LEFT_OUT
    return f'<section id="not-counted"><h2>Runs not in the numbers</h2>\n{body}\n</section>'


def _failed_runs(frame: pd.DataFrame) -> str:
    """The table of runs whose result is not a success; '' when every result is one."""
    failed = frame[frame["status"] != "success"] if len(frame) else frame
    if not len(failed):
        return ""
    head = "".join(f"<th>{header}</th>" for header, _key in FAILED_RUN_COLUMNS)
    rows = "".join(
        "<tr>"
        + "".join(f"<td>{html.escape(_text(r.get(key)))}</td>" for _header, key in FAILED_RUN_COLUMNS)
        + "</tr>\n"
        for _, r in failed.iterrows()
    )
    return (
        f'<h3>Did not succeed ({len(failed)})</h3>\n<table id="failed-runs"><thead><tr>{head}</tr>'
        f"</thead><tbody>{rows}</tbody></table>"
    )


def _unfinished_runs(unfinished: list[str]) -> str:
    if not unfinished:
        return ""
    items = "".join(f"<li>{html.escape(_describe_unfinished(d))}</li>" for d in unfinished)
    return (
        f"<h3>Unfinished: a spec but no result ({len(unfinished)})</h3>\n"
        "<p>Still pending or running, or lost (the job died without writing a result); "
        "<code>peftbench status</code> tells which.</p>"
        f'<ul id="unfinished-runs">{items}</ul>'
    )


def _search_section(frame: pd.DataFrame) -> str:
    """How searched cells were searched and what they cost against the full grid; '' when none was."""
    cells = search_cells(frame)
    if cells.empty:
        return ""
    rows = [
        (
            f"{c['model']} · {c['method']} · {c['task']}",
            f"{c['points']} points × {c['seeds']} seeds: {c['runs']} runs, {c['halted']} halted; "
            f"{c['hours']:.3g} h of {c['full_grid_hours']:.3g} h ({c['share']:.0%})",
        )
        for _, c in cells.iterrows()
    ]
    lines = "".join(f"<p>{html.escape(line)}</p>" for line in protocol_lines(cells))
    return (
        f'<section id="search"><h2>Search</h2>\n{lines}\n'
        f'<table class="facts">{_facts_rows(rows)}</table>\n</section>'
    )


def _listed(title: str, attributes: str, lines: list[str]) -> str:
    """A titled list of `lines`; '' when there are none."""
    if not lines:
        return ""
    items = "".join(f"<li>{html.escape(line)}</li>" for line in lines)
    return f"<h3>{title}</h3><ul{attributes}>{items}</ul>"


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
    return MISSING if is_missing(value) else str(value)


def provenance_values(frame: pd.DataFrame) -> dict[str, Counter]:
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


def _provenance_shown(key: str, counts: Counter | None) -> str:
    """One provenance key's values with their run counts; a summary when there are too many to list."""
    if not counts:
        return "not recorded" if key in HEADLINE_PROVENANCE else ""
    if len(counts) > MAX_LISTED_VALUES:
        examples = ", ".join(v for v, _ in counts.most_common(3))
        return f"{len(counts)} distinct values (most common: {examples})"
    return "; ".join(f"{v} ({n} run{'s' if n != 1 else ''})" for v, n in counts.most_common())


def _facts_rows(facts: list[tuple[str, str]]) -> str:
    return "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>" for k, v in facts)


def _provenance_section(frame: pd.DataFrame, sweep_dirs: list[Path]) -> str:
    values = provenance_values(frame)
    keys = [*HEADLINE_PROVENANCE, *sorted(k for k in values if k not in HEADLINE_PROVENANCE)]
    runs = _facts_rows([(key, _provenance_shown(key, values.get(key))) for key in keys])
    this = _this_report()
    report = _facts_rows(
        [
            ("written", this["written"]),
            ("by peftbench", this["version"]),
            ("from checkout", this["commit"]),
            ("sweep folders", ", ".join(str(d) for d in sweep_dirs)),
        ]
    )
    return (
        '<section id="provenance"><h2>Provenance</h2>\n'
        "<h3>The runs</h3>\n"
        f'<table class="facts" id="run-provenance">{runs}</table>\n'
        "<h3>This report</h3>\n"
        f'<table class="facts">{report}</table>\n'
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
