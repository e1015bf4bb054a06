"""The studies' published figures as data: the shipped files load, map onto the sweeps' own names,
and a bad file is refused naming the file and the key."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from peftbench.collect.merge import method_name
from peftbench.collect.published import (
    PUBLISHED_DIR,
    figures,
    published_for,
    read_published,
    shipped_studies,
)
from peftbench.core.errors import ConfigError
from peftbench.plan.loading import load_sweep
from tests.conftest import REPO

GOOD = {
    "study": "A study, Table 1",
    "source": "Table 1",
    "sweeps": ["synth"],
    "scale": "percent",
    "models": {"MiniLM": "minilm-l6"},
    "methods": {"LoRA": "lora"},
    "columns": {"sent": {"task": "movie_sentiment", "metric": "accuracy"}},
    "rows": [{"model": "MiniLM", "method": "LoRA", "sent": 84.5}],
}


def write(tmp_path: Path, data: dict) -> Path:
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def test_shipped_studies_are_package_data_for_the_study_sweeps_with_figures():
    assert {p.name for p in shipped_studies()} == {
        "hulu-puli.yaml",
        "slovene-bertic.yaml",
        "belle-instruct.yaml",
    }
    assert all(p.parent == PUBLISHED_DIR for p in shipped_studies())
    # SloBENCH/SloBERTa published none: no file, so its sweep simply gets no paper column
    assert published_for({"slobench-sloberta"}) == []


@pytest.mark.parametrize("stem", ["hulu-puli", "slovene-bertic", "belle-instruct"])
def test_each_figure_lands_on_a_cell_the_sweep_runs(stem: str):
    """The mappings name the sweep's own models, method labels (as tables show them) and tasks."""
    study = read_published(PUBLISHED_DIR / f"{stem}.yaml")
    runs = load_sweep(REPO / "configs" / "sweeps" / f"{stem}.yaml").runs
    if stem == "belle-instruct" and "belle_4m" not in {r.task.name for r in runs}:
        pytest.skip("the BELLE sweep does not have Table 4's data scales yet (issue 15, BELLE part)")
    cells = {(r.model.name, method_name(r.label, r.training.engine), r.task.name) for r in runs}
    found = figures(study)
    assert found and {(f.model, f.method, f.task) for f in found} <= cells
    assert study.sweeps == [load_sweep(REPO / "configs" / "sweeps" / f"{stem}.yaml").spec.name]


def test_percent_becomes_a_fraction_and_null_stays_unknown(tmp_path: Path):
    rows = [
        {"model": "MiniLM", "method": "LoRA", "sent": 84.5},
        {"model": "MiniLM", "method": "LoRA", "sent": None},
    ]
    [first, second] = figures(read_published(write(tmp_path, {**GOOD, "rows": rows})))
    assert first.paper == pytest.approx(0.845) and second.paper is None
    assert (first.model, first.method, first.task, first.metric) == (
        "minilm-l6",
        "lora",
        "movie_sentiment",
        "accuracy",
    )


def test_a_bad_file_names_every_problem_with_its_key(tmp_path: Path):
    bad = {
        **GOOD,
        "scale": "per-mille",
        "colour": "blue",
        "rows": [
            {"model": "MiniLm", "method": "LoRA", "sent": "84.5"},
            {"model": "MiniLM", "method": "LoRA", "snet": 80.0},
        ],
    }
    with pytest.raises(ConfigError) as info:
        read_published(write(tmp_path, bad))
    message = str(info.value)
    assert "study.yaml: scale:" in message and "'percent' or 'fraction'" in message
    assert "study.yaml: colour: Unknown key 'colour'." in message


def test_rows_are_checked_once_the_keys_are_right(tmp_path: Path):
    rows = [
        {"model": "MiniLm", "method": "LoRA", "sent": "84.5"},
        {"model": "MiniLM", "method": "LoRA", "snet": 80.0},
        {"model": "MiniLM", "sent": 80.0},
    ]
    with pytest.raises(ConfigError) as info:
        read_published(write(tmp_path, {**GOOD, "rows": rows}))
    message = str(info.value)
    assert (
        "rows[0].model: Unknown model (no mapping) 'MiniLm'. Allowed: MiniLM. Did you mean 'MiniLM'?"
        in message
    )
    assert "rows[0].sent: A figure is a number or null (got '84.5')." in message
    assert "rows[1].snet: Unknown column 'snet'." in message and "Did you mean 'sent'?" in message
    assert "rows[2]: No method." in message
