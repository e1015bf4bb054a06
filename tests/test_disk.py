"""The disk a sweep needs at its peak (plan/disk.py): a checkpoint's parts by method and engine, a
run's peak and what it leaves, the sweep's peak at the runs that train at once, and the refusal a
quota or the free space gives, which `--force` passes."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from peftbench.cli import app
from peftbench.core.errors import ConfigError
from peftbench.core.results import RunResult, utc_now, write_result
from peftbench.plan.disk import CHECKPOINT_EXTRA, GB, RunDisk, SweepDisk, run_disk
from peftbench.plan.sweep_plan import load_plan
from tests.conftest import demo_run

P, T = 6_738_415_616, 4_194_304  # LLaMA-7B; LoRA r=8 on q and v


def test_full_fine_tuning_under_zero3_saves_16_bit_weights_and_12_bytes_of_optimizer_per_parameter():
    """ZeRO's shards: fp32 master and two moments (12 bytes), beside the 16-bit model it gathers on
    save; about 94 GB for LLaMA-7B, the issue's "order of 100 GB"."""
    run = demo_run("full", distributed="zero3", precision="bf16")
    disk = run_disk(run, P, P)
    assert disk.checkpoint == 2 * P + 12 * P + CHECKPOINT_EXTRA
    assert round(disk.checkpoint / GB, 1) == 94.3
    assert disk.artifact == 2 * P
    assert disk.checkpoints_at_peak == 2 and disk.checkpoints_left == 0  # one kept, one more while saving
    assert disk.peak == 2 * disk.checkpoint + disk.predictions
    assert disk.left == disk.artifact + disk.predictions


def test_unsharded_runs_save_fp32_weights_and_adams_two_moments_lora_only_its_own():
    full = run_disk(demo_run("full", precision="bf16"), P, P)
    assert full.checkpoint == 4 * P + 8 * P + CHECKPOINT_EXTRA
    lora = run_disk(demo_run("lora", precision="bf16"), P, T)
    assert (lora.checkpoint, lora.artifact) == (4 * T + 8 * T + CHECKPOINT_EXTRA, 4 * T)
    zero3_lora = run_disk(demo_run("lora", distributed="zero3", precision="bf16"), P, T)
    assert zero3_lora.checkpoint == 2 * T + 12 * T + CHECKPOINT_EXTRA


def test_early_stopping_keeps_two_checkpoints_and_keep_checkpoints_leaves_them():
    disk = run_disk(
        demo_run("lora", early_stopping_patience=2, eval_strategy="epoch", keep_checkpoints=True), P, T
    )
    assert (disk.checkpoints_at_peak, disk.checkpoints_left) == (3, 2)
    assert disk.left == 2 * disk.checkpoint + disk.artifact + disk.predictions


def test_generated_answers_make_larger_predictions():
    plain = run_disk(demo_run("lora", max_eval_samples=1000), P, T)
    assert plain.predictions == 1000 * 64
    from tests.test_generation import run_spec
    from tests.test_instruction import BELLE

    generating = run_disk(run_spec(demo_run("lora").model, BELLE, "lora", max_new_tokens=512), P, T)
    assert generating.predictions == 10_000 * (64 + 4 * 512)  # max_eval_samples unset: 10,000 assumed


def sized(run_id: str, peak_extra: int, left: int) -> RunDisk:
    """A RunDisk whose checkpoint is `peak_extra` (one at its peak) and whose artifact is `left`."""
    run = demo_run("lora", learning_rate=1e-4 * (1 + int(run_id)))
    return RunDisk(run, peak_extra, 1, 0, left, 0)


def test_the_sweeps_peak_is_every_runs_leftovers_plus_the_largest_that_train_at_once(tmp_path: Path):
    runs = [sized("1", 10, 1), sized("2", 30, 2), sized("3", 20, 3), sized("4", 5, 4)]
    one = SweepDisk(runs, 1, tmp_path, 10**12, None)
    # run peak: max(checkpoint, artifact) ; extra over what it leaves: 9, 28, 17, 1
    assert one.peak == (1 + 2 + 3 + 4) + 28
    assert SweepDisk(runs, 2, tmp_path, 10**12, None).peak == 10 + 28 + 17
    assert SweepDisk(runs, 32, tmp_path, 10**12, None).peak == 10 + 28 + 17 + 9 + 1
    assert one.largest_run is runs[1]


def profile_file(tmp_path: Path, **extra: object) -> Path:
    path = tmp_path / "site.yaml"
    path.write_text(yaml.safe_dump({"launcher": "local", "runs_dir": str(tmp_path / "runs"), **extra}))
    return path


def test_a_sweep_over_the_quota_is_refused_naming_the_figures_and_force_goes_on(
    tiny_demo: Path, tmp_path: Path
):
    site = str(profile_file(tmp_path, quota_gb=0.1))
    with pytest.raises(ConfigError) as info:
        load_plan(tiny_demo, site)
    [problem] = [p for p in info.value.problems if p.key == "quota_gb"]
    assert (
        "The sweep's 8 run(s) to run need about 0.6 GB of disk at their peak (1 at once;" in problem.message
    )
    assert (
        "over the profile's quota_gb of 0 GB. Free space, run fewer at once, or pass --force"
        in problem.message
    )
    assert problem.file.endswith("site.yaml")
    forced = load_plan(tiny_demo, site, force=True)
    assert forced.disk is not None and forced.disk.quota == 10**8
    preview = load_plan(tiny_demo, site, submitting=False)
    assert any(w.key == "quota_gb" for w in preview.warnings)  # a dry run shows what would refuse


def test_runs_already_done_need_no_room(tiny_demo: Path, tmp_path: Path):
    plan = load_plan(tiny_demo, str(profile_file(tmp_path)))
    assert plan.disk is not None and len(plan.disk.runs) == 8
    done = plan.runs[0]
    now = utc_now()
    write_result(
        plan.sweep_dir / done.run_id / "result.json",
        RunResult(run_id=done.run_id, status="success", spec=done, started_at=now, finished_at=now),
    )
    again = load_plan(tiny_demo, str(profile_file(tmp_path)))
    assert again.disk is not None and [d.run.run_id for d in again.disk.runs] == [
        r.run_id for r in plan.runs[1:]
    ]


def test_the_dry_run_prints_both_peaks_beside_the_free_space_and_the_quota(tiny_demo: Path, tmp_path: Path):
    site = profile_file(tmp_path, quota_gb=0.1)
    out = CliRunner().invoke(app, ["sweep", str(tiny_demo), "--cluster", str(site), "--dry-run"])
    assert out.exit_code == 0, out.output
    line = next(line for line in out.output.splitlines() if line.startswith("Disk: "))
    assert "Disk: each run up to 0.5 GB (" in line and "the sweep up to 0.6 GB (1 at once);" in line
    assert f"{tmp_path}: " in line and " GB free, quota_gb 0 GB" in line
    assert "A submission would refuse" in out.output and "quota_gb" in out.output
    refused = CliRunner().invoke(app, ["sweep", str(tiny_demo), "--cluster", str(site)])
    assert refused.exit_code != 0 and "pass --force to go on" in refused.output
