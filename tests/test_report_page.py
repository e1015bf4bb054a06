"""report.html as text (collect.report_page): the summary's facts, the runs left out, provenance."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pandas as pd

from peftbench.collect.merge import Collection
from peftbench.collect.report_page import (
    MAX_LISTED_VALUES,
    ReportOutcome,
    energy_fact,
    provenance_values,
    render_report,
)


def test_the_summary_gives_the_energy_of_all_results_or_why_there_is_none():
    on_cpu = pd.DataFrame({"energy_wh": [None, None], "energy_note": ["no NVML: CPU run"] * 2})
    assert energy_fact(on_cpu) == "not measured (no NVML: CPU run)"
    mixed = pd.DataFrame({"energy_wh": [1.5, None, 2.25], "energy_note": ["a", "no NVML: CPU run", "b"]})
    assert energy_fact(mixed).startswith("3.75 Wh over 2 of 3 runs")
    assert energy_fact(pd.DataFrame()) == "not measured"


def test_a_page_with_nothing_left_out_says_so_and_names_what_was(tmp_path: Path):
    frame = pd.DataFrame(
        {
            "run_id": ["a", "b"],
            "status": ["success", "oom"],
            "seed": [0, 1],
            "model": ["m", "m"],
            "error_summary": [None, "CUDA out of memory."],
        }
    )
    clean = ReportOutcome(tmp_path / "report.html", 1, 1)
    page = render_report([tmp_path], Collection(frame.iloc[:1]), None, [], [], clean)
    assert "<p>None: every run folder has a successful, readable result.</p>" in page
    troubled = ReportOutcome(tmp_path / "report.html", 2, 1, problems=["hulu: no successful runs to submit"])
    troubled.unreadable = ["x/result.json: not JSON"]
    page = render_report([tmp_path], Collection(frame), None, [], [], troubled)
    failed = page.split('id="failed-runs"')[1].split("</table>")[0]
    assert "<td>b</td>" in failed and "<td>CUDA out of memory.</td>" in failed and "<td>–</td>" in failed
    assert "<h3>Unreadable result.json (1)</h3><ul><li>x/result.json: not JSON</li></ul>" in page
    assert '<ul id="problems"><li>hulu: no successful runs to submit</li></ul>' in page
    assert "None: every run folder" not in page


def test_provenance_is_counted_per_value_and_summarised_past_a_few():
    records = [
        {"git_commit": f"c{i % (MAX_LISTED_VALUES + 1)}", "packages": {"torch": "2.8.0"}} for i in range(14)
    ]
    frame = pd.DataFrame({"provenance": [json.dumps(r) for r in records] + [None]})
    values = provenance_values(frame)
    assert values["packages.torch"] == Counter({"2.8.0": 14}) and len(values["git_commit"]) == 7
    page = render_report([], Collection(frame.assign(status="success", seed=0)), None, [], [], _outcome())
    provenance = page.split('id="run-provenance"')[1].split("</table>")[0]
    assert "7 distinct values (most common: " in provenance and "2.8.0 (14 runs)" in provenance
    assert "<th>lock_sha256</th><td>not recorded</td>" in provenance


def _outcome() -> ReportOutcome:
    return ReportOutcome(Path("report.html"), 15, 15)
