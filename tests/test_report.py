"""`peftbench report` on the synthetic results set: files, a self-contained page, and a real browser."""

from __future__ import annotations

import base64
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from peftbench.collect.report import check_report_options
from peftbench.core.errors import ConfigError
from peftbench.core.predictions import Prediction, predictions_path, write_predictions
from peftbench.core.results import read_result
from tests.conftest import REPO
from tests.headless_chromium import file_url, find_chromium, load_page
from tests.synthetic_results import write_synthetic_sweep

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory):
    """The report of the synthetic sweep, made by the real command (with a HuLU export)."""
    sweep = tmp_path_factory.mktemp("runs") / "synth"
    ids = write_synthetic_sweep(sweep, predictions=True)
    collapse_predictions(sweep, "minilm-l6", "prompt_tuning", "cola")
    out = sweep.parent / "report"
    command = [sys.executable, "-m", "peftbench", "report", str(sweep), "--out", str(out)]
    command += ["--submission", "hulu", "--task", "cola=cola", "--task", "movie_sentiment=sst"]
    done = subprocess.run(
        command, capture_output=True, text=True, cwd=REPO, timeout=300, env={**os.environ, "COLUMNS": "200"}
    )
    return done, out, ids


def collapse_predictions(sweep: Path, model: str, method: str, task: str) -> None:
    """Every run of that cell predicts class 0 for every test example, as a model that learned nothing."""
    for path in sweep.glob("*/result.json"):
        spec = read_result(path).spec
        if (spec.model.name, spec.label, spec.task.name) == (model, method, task):
            write_predictions(predictions_path(path.parent), [Prediction(index=i, label=0) for i in range(4)])


def test_the_command_writes_report_tables_plots_and_submissions(made):
    done, out, _ids = made
    assert done.returncode == 0, done.stdout + done.stderr
    assert "72 successful of 73 results; 1 unfinished, 0 unreadable." in done.stdout
    assert f"Report: {out / 'report.html'}" in done.stdout
    assert sorted(p.name for p in (out / "tables").iterdir()) == sorted(
        f"{t}.{e}" for t in ("main", "cost", "scale") for e in ("md", "tex", "csv")
    )
    assert len(list((out / "plots").glob("*.png"))) == 5 and len(list((out / "plots").glob("*.svg"))) == 5
    for name in ("results.parquet", "results.csv", "table.md"):
        assert (out / name).is_file()
    hulu = sorted(
        p.relative_to(out / "submissions" / "hulu").as_posix()
        for p in out.rglob("*.json")
        if "hulu" in str(p)
    )
    assert len(hulu) == 16 and "xlmr-base--lora/sst_predicted_labels.json" in hulu


def test_the_page_is_self_contained(made):
    _done, out, _ids = made
    page = (out / "report.html").read_text(encoding="utf-8")
    assert "<script" not in page.lower()
    assert not re.search(r"""(src|href)=["']?(https?:|//)""", page), "the page must fetch nothing"
    images = re.findall(r'<img src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    assert len(images) == page.count("<img ") == 5
    assert all(base64.b64decode(data)[:8] == PNG_MAGIC for data in images)
    assert page.count("<table") >= 3 and "<strong>0.891</strong>" in page


def test_the_page_lists_failed_and_lost_runs_and_provenance(made):
    _done, out, ids = made
    page = (out / "report.html").read_text(encoding="utf-8")
    failed = page.split('id="failed-runs"')[1].split("</table>")[0]
    assert ids["oom"][0] in failed and "oom" in failed and "CUDA out of memory." in failed
    unfinished = page.split('id="unfinished-runs"')[1].split("</ul>")[0]
    assert ids["lost"][0] in unfinished and "bitfit · seed 9" in unfinished
    provenance = page.split('id="run-provenance"')[1].split("</table>")[0]
    assert "0123456789abcdef0123456789abcdef01234567 (72 runs)" in provenance
    assert "packages.torch" in provenance and "2.8.0 (72 runs)" in provenance
    assert "lock_sha256" in provenance and "image_sha256" in provenance
    assert "This report" in page and "from checkout" in page


def test_options_are_checked_together():
    assert check_report_options("bootstrap", ["hulu", "slobench-si-nli"], ["a=b"]) == {"a": "b"}
    with pytest.raises(ConfigError) as err:
        check_report_options("wald", ["hullu"], ["cola"])
    text = str(err.value)
    assert "3 problems found" in text and "Unknown interval 'wald'" in text
    assert "Did you mean 'hulu'?" in text and "Expected OURS=THEIRS" in text


# What the page looks like as drawn: every table inside its column (no hidden columns behind a
# scrollbar), no page-wide horizontal scroll, each plot shown whole, the one-class warning visible.
AS_DRAWN = {
    "tables": """[...document.querySelectorAll('.table-wrap')].map(w => ({
        id: w.querySelector('table').id, shown: w.clientWidth, drawn: w.scrollWidth,
        columns: w.querySelectorAll('thead th').length}))""",
    "page": "({shown: window.innerWidth, drawn: document.documentElement.scrollWidth})",
    "plots": """[...document.querySelectorAll('figure img')].map(img => ({
        alt: img.alt, shown: img.getBoundingClientRect().width, natural: img.naturalWidth,
        column: img.parentElement.getBoundingClientRect().width}))""",
    "one_class": """[...document.querySelectorAll('.one-class')].map(e => ({
        text: e.textContent, width: e.getBoundingClientRect().width, color: getComputedStyle(e).color}))""",
}


@pytest.mark.skipif(
    find_chromium() is None,
    reason="no chromium on PATH: install Debian's chromium (apt-get install chromium) for this test",
)
def test_the_page_in_a_real_headless_chromium(made, tmp_path: Path):
    _done, out, _ids = made
    page = load_page(file_url(out / "report.html"), width=1400, expressions=AS_DRAWN)
    assert page.errors == [], page.errors
    assert page.title == "peftbench report: synth"
    assert len(page.images) == 5
    for image in page.images:
        assert image["decoded"] and image["width"] > 500 and image["height"] > 200, image
        assert image["shownWidth"] > 300 and image["shownHeight"] > 100, image
    tables = {t["id"]: t for t in page.values["tables"]}
    assert (
        set(tables) == {"table-main", "table-cost", "table-scale"} and tables["table-cost"]["columns"] == 13
    )
    for table in tables.values():
        assert table["drawn"] <= table["shown"], f"{table['id']} overflows its column: {table}"
    assert page.values["page"]["drawn"] <= page.values["page"]["shown"], page.values["page"]
    for plot in page.values["plots"]:
        assert 0 < plot["shown"] <= plot["column"], plot
    warnings = page.values["one_class"]
    assert len(warnings) == 2 and all(w["width"] > 0 and w["color"] == "rgb(176, 0, 32)" for w in warnings)
    shot = tmp_path / "report.png"
    shot.write_bytes(page.screenshot)
    assert page.screenshot[:8] == PNG_MAGIC and shot.stat().st_size > 50_000
