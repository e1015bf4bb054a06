"""What a sweep will cost and has cost (plan/budget.py), `time_min: auto` (plan/placement.py), and how
`sweep --dry-run`, `plan`, `sweep --force` and `status` show them."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from peftbench.cli import app
from peftbench.core.errors import ConfigError
from peftbench.plan.placement import auto_minutes
from peftbench.plan.sweep_plan import load_plan
from tests.conftest import write_yaml
from tests.test_time_estimate import finished


def tiny_with(tiny_demo: Path, **top: object) -> Path:
    data = yaml.safe_load(tiny_demo.read_text()) | top
    return write_yaml(tiny_demo, data)


def test_a_sweep_over_its_budget_is_refused_with_both_figures_force_passes(tiny_demo: Path, tmp_path: Path):
    sweep = tiny_with(tiny_demo, budget_gpu_hours=0.0001)
    runs = tmp_path / "runs"
    with pytest.raises(ConfigError) as err:
        load_plan(sweep, "local", runs)
    [problem] = [p for p in err.value.problems if p.key == "budget_gpu_hours"]
    assert "estimated at" in problem.message and "0.00 of 0.0001 are left" in problem.message
    assert "--force" in problem.message
    assert load_plan(sweep, "local", runs, force=True).runs  # --force: the same plan, not refused
    preview = load_plan(sweep, "local", runs, submitting=False)  # a dry run shows it as a warning
    assert [w.key for w in preview.warnings] == ["budget_gpu_hours"]


def test_what_is_spent_counts_against_the_budget(tiny_demo: Path, tmp_path: Path):
    runs = tmp_path / "runs"
    sweep = tiny_with(tiny_demo, budget_gpu_hours=10.0)
    plan = load_plan(sweep, "local", runs)  # fits
    first = plan.runs[0]
    finished(runs / plan.spec.name, first, train_seconds=3600 * 10.0, tokens=1000, samples=100)  # 10 h spent
    with pytest.raises(ConfigError, match=r"are left \(10\.00 spent"):
        load_plan(sweep, "local", runs)


def test_time_min_auto_asks_for_the_slowest_run_of_its_array_times_the_margin(
    tiny_demo: Path, tmp_path: Path
):
    sweep = tiny_with(tiny_demo, resources={"time_min": "auto"})
    plan = load_plan(sweep, "dev", tmp_path / "runs", submitting=False)
    assert plan.estimates is not None
    slowest = max(plan.estimates.wall_seconds.values())
    limits = {p.time_min for p in plan.placed.values()}
    assert limits == {auto_minutes(slowest, plan.profile)}  # one shape, one array, one limit
    assert auto_minutes(slowest, plan.profile) >= slowest * plan.profile.cost.time_margin / 60
    assert auto_minutes(1e9, plan.profile) == plan.profile.slurm.max_time_min  # capped by the partition


def test_time_min_auto_without_the_models_shape_is_refused_with_fetch(tiny_demo: Path, tmp_path: Path):
    ghost = {"name": "ghost", "source": "nobody-here/ghost-bert", "family": "bert"}
    sweep = tiny_with(tiny_demo, models=[ghost], resources={"time_min": "auto"})
    with pytest.raises(ConfigError) as err:
        load_plan(sweep, "dev", tmp_path / "runs")
    refused = [p for p in err.value.problems if p.key.endswith("resources.time_min")]
    assert refused and all("peftbench fetch" in p.message and p.value == "auto" for p in refused)


def test_a_bad_time_min_says_what_is_allowed(tiny_demo: Path, tmp_path: Path):
    sweep = tiny_with(tiny_demo, resources={"time_min": "soon"})
    with pytest.raises(ConfigError, match="'auto' or a whole number of minutes"):
        load_plan(sweep, "local", tmp_path / "runs")


def test_dry_run_and_plan_show_each_runs_estimate_and_the_totals(tiny_demo: Path, tmp_path: Path):
    runs = ["--runs-dir", str(tmp_path / "runs")]
    dry = CliRunner().invoke(app, ["sweep", str(tiny_demo), "--dry-run", *runs])
    assert dry.exit_code == 0, dry.output
    assert "GPU-h" in dry.output and "default for none" in dry.output
    assert "Estimate for the 8 run(s) still to do" in dry.output
    shown = CliRunner().invoke(app, ["plan", str(tiny_demo), *runs])
    assert shown.exit_code == 0, shown.output
    assert "time per run, estimated" in shown.output and "cores" in shown.output


def test_status_shows_runs_done_gpu_hours_spent_against_estimate_and_eta(tiny_demo: Path, tmp_path: Path):
    runs = tmp_path / "runs"
    plan = load_plan(tiny_demo, "local", runs, submitting=False)
    progress = plan.progress()
    assert (progress.done, progress.eta_s) == (0, None)
    finished(runs / plan.spec.name, plan.runs[0], train_seconds=36.0, tokens=1000, samples=96)
    progress = plan.progress()
    assert progress.done == 1 and progress.spent_gpu_hours == pytest.approx(48.0 / 3600)
    assert progress.eta_s is not None and progress.eta_s > 0
    shown = CliRunner().invoke(app, ["status", str(tiny_demo), "--runs-dir", str(runs)])
    assert "1/8 runs done; 0.01 GPU-hours spent of" in shown.output
    assert "left at the measured pace" in shown.output
