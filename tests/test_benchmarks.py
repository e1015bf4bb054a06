"""The benchmark harnesses work on small inputs (their speed goals are checked by `make bench`, not here)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from benchmarks import baseline_trainer, bench_scale, bench_speed

from peftbench.core.spec import RunSpec, TrainingSettings


def test_the_scale_bench_expands_and_collects_a_small_sweep(tmp_path: Path):
    figures = bench_scale.main(["--runs", "500", "--out", str(tmp_path / "scale.json")])
    assert figures["runs"] == 500
    assert json.loads((tmp_path / "scale.json").read_text()) == figures


def test_the_speed_bench_compares_time_to_target_and_medians():
    def run(arm: str, repeat: int, speed: float, rss: int, accuracy: float, target: float | None):
        return bench_speed.Measured(
            arm, repeat, 100 / speed, rss, 50 / speed, speed, accuracy, accuracy, 10, target
        )

    runs = [
        run("baseline", 0, 4.0, 8_000_000_000, 0.80, 200.0),
        run("peftbench", 0, 50.0, 2_000_000_000, 0.81, 20.0),
        run("baseline", 1, 4.2, 8_200_000_000, 0.80, 180.0),
        run("peftbench", 1, 54.0, 2_100_000_000, 0.81, 30.0),
    ]
    summary = bench_speed.summarize(runs, eval_samples=250)
    assert summary["time_to_target_speedup"] == pytest.approx(190 / 25)
    assert summary["speedup_samples_per_second"] == pytest.approx(52 / 4.1)
    assert summary["peak_rss_ratio"] == pytest.approx(2.05 / 8.1)
    assert summary["metrics_agree"] and summary["arms"]["peftbench"]["reached"] == 2
    runs[1].test_accuracy = runs[3].test_accuracy = 0.55
    runs[3].time_to_target = None  # one run never reached the target: its time is unknown, no ratio
    summary = bench_speed.summarize(runs, eval_samples=250)
    assert not summary["metrics_agree"] and summary["time_to_target_speedup"] is None
    assert summary["arms"]["peftbench"]["reached"] == 1


def test_the_speed_bench_trains_both_arms_alike_to_the_target():
    args = bench_speed.parse(["--target", "0.8", "--max-steps", "96", "--eval-steps", "8"])
    spec = bench_speed.bench_spec(args)
    assert isinstance(spec, RunSpec) and spec.method == "full"
    assert spec.training.group_by_length and spec.training.padding is None  # peftbench's defaults
    assert (spec.training.eval_strategy, spec.training.eval_steps, spec.training.max_steps) == (
        "steps",
        8,
        96,
    )
    assert spec.training.target_validation == 0.8 and spec.training.warmup_ratio == args.warmup_ratio
    assert spec.training.max_train_samples == args.train_samples and spec.training.max_length == 256
    with pytest.raises(SystemExit):
        bench_speed.parse(["--max-steps", "100", "--eval-steps", "8"])  # the cap must be an evaluation
    assert bench_speed.parse(["--quick"]).repeats == 1
    untimed = bench_speed.argparse.Namespace(
        epochs=1.0, batch_size=64, learning_rate=1e-4, max_length=256, train_samples=1000,
        eval_samples=250, seed=0,
    )  # fmt: skip
    assert bench_speed.bench_spec(untimed).training.eval_strategy == "no"  # bench_switches' runs


def test_the_baseline_trains_to_a_target_and_reports(tmp_path: Path):
    summary = baseline_trainer.main(
        [str(tmp_path), "--train-samples", "16", "--eval-samples", "8", "--batch-size", "8",
         "--max-length", "32", "--eval-steps", "1", "--max-steps", "2", "--target", "0.0"]
    )  # fmt: skip
    assert summary["train_samples_per_second"] > 0
    assert 0 <= summary["test_accuracy"] <= 1
    assert summary["steps"] == 1, "the first evaluation reached the target: training stopped there"
    assert [p["step"] for p in summary["curve"]] == [1] and summary["curve"][0]["reached_target"]
    assert summary["time_to_target"] == summary["curve"][0]["seconds"] > 0
    assert json.loads((tmp_path / "baseline.json").read_text()) == summary
    assert json.loads((tmp_path / "validation_curve.json").read_text())["points"] == summary["curve"]


def test_the_baseline_seeds_its_classification_head_before_building_it():
    """Two builds with one seed draw the same new head (the RNG moved on between them); another seed
    draws another."""
    import torch

    first, again, other = (baseline_trainer.seeded_model(seed).classifier.weight for seed in (7, 7, 8))
    assert torch.equal(first, again)
    assert not torch.equal(first, other)


def test_every_switch_variant_is_a_valid_setting(monkeypatch):
    monkeypatch.syspath_prepend(str(Path(bench_speed.__file__).parent))
    from benchmarks import bench_switches

    for name, change in bench_switches.VARIANTS.items():
        assert TrainingSettings.model_validate(change), name


def test_the_token_cache_bench_times_three_ways_of_preparing_a_task():
    from benchmarks import bench_token_cache

    figures = bench_token_cache.main(["--repeats", "1", "--copies", "1"])
    assert set(figures) == {"no_cache", "first_run", "later_run"}


def test_the_engines_bench_measures_each_backend_and_reports_a_refused_arm(tmp_path: Path):
    """Two arms: the rest of what bench_engines measures (full under each engine, DoRA, QLoRA's
    refusal on CPU) runs through it in the GPU check's test below."""
    from benchmarks import bench_engines

    arms = bench_engines.main(
        ["--size", "tiny", "--arms", "lora:zero3,bitfit:none",
         "--steps", "2", "--batch-size", "2", "--max-length", "32", "--eval-samples", "4",
         "--out", str(tmp_path / "engines.json")]
    )  # fmt: skip
    by_arm = {(a.method, a.backend): a for a in arms}
    lora = by_arm[("lora", "zero3")]
    assert lora.status == "success" and lora.total_params > lora.trainable_params > 0
    assert lora.positions_per_second > 0 and lora.mfu is None  # no GPU, no peak to divide by
    bitfit = by_arm[("bitfit", "none")]  # Llama has no biases: refused as a sweep would, with why
    assert bitfit.status == "refused" and "bias" in bitfit.error
    assert json.loads((tmp_path / "engines.json").read_text())["device"] == "CPU"
    with pytest.raises(SystemExit, match="unknown backend 'zero4'"):
        bench_engines.parse_arms("full:zero4")


def test_the_plan_bench_plans_a_gpu_sweep_offline_in_process_and_as_a_command(tmp_path: Path):
    from benchmarks import bench_plan

    figures = bench_plan.main(["--runs", "100", "--out", str(tmp_path / "plan.json")])
    assert figures["runs"] == 100 and figures["cli_exit"] == 0
    assert json.loads((tmp_path / "plan.json").read_text()) == figures


def test_the_gpu_check_runs_every_part_on_the_tiny_model_and_writes_json_and_markdown(tmp_path: Path):
    from benchmarks import gpu_check

    # Every part, with fewer arms than `make gpu-check` (each arm is a process of its own): FSDP and
    # ZeRO-3 full fine-tuning run through bench_engines in the test above and in test_distributed.py.
    argv = ["--tiny", "--full-engines", "none", "--adapters", "lora,qlora", "--out", str(tmp_path)]
    report = gpu_check.main(argv)
    full = {r["backend"]: r for r in report["full"]}
    assert set(full) == {"none"} and full["none"]["status"] == "success"
    adapters = {r["method"]: r for r in report["adapters"]}
    assert adapters["lora"]["status"] == "success"
    plain, lora = full["none"], adapters["lora"]
    assert plain["trainable_params"] == plain["total_params"] > lora["trainable_params"] > 0
    assert lora["artifact_bytes"] < plain["artifact_bytes"]
    assert plain["positions_per_second"] > 0 and plain["mfu"] is None  # no GPU, no peak to divide by
    assert adapters["qlora"]["status"] == "refused"  # 4-bit needs a GPU, as a sweep says
    assert (
        report["offload"]["largest"] == "tiny" and report["offload"]["tried"][0]["backend"] == "zero3_offload"
    )
    for row in report["full"] + report["adapters"]:
        assert row["planner_estimate_bytes"] > 0
        assert row["planner_over_measured"] is None  # no GPU peak on CPU: no ratio claimed
    assert json.loads((tmp_path / "gpu_check.json").read_text())["device"] == "CPU"
    page = (tmp_path / "gpu_check.md").read_text()
    assert (
        "# GPU check on CPU" in page and "ZeRO-3 offload" in page and "| tiny | lora | none | success" in page
    )
    generated = report["generation"]  # part 4: each arm in a fresh process, its estimate beside its peak
    assert [(r["task"], r["device"]) for r in generated] == [("generation", "cpu"), ("instruction", "cpu")]
    assert all(r["estimate_mb"] > r["kv_cache_and_logits_mb"] > 0 for r in generated)
    assert "## 4. Generating test answers" in page and "| instruction | cpu | 64 | 16 | 2 |" in page


def test_the_estimate_bench_calibrates_once_per_method_on_other_runs_and_sums_up_the_ratios():
    from benchmarks import bench_estimate

    from peftbench.plan.loading import load_sweep

    runs = [run for path in bench_estimate.SWEEPS for run in load_sweep(path).runs]
    short = bench_estimate.calibrating_runs(runs)
    assert sorted(run.method for run in short) == sorted({run.method for run in runs})
    assert not {run.run_id for run in short} & {run.run_id for run in runs}  # never a measured run
    rows = [{"ratio_before": 2.5, "ratio_after": 1.2}, {"ratio_before": 0.5, "ratio_after": 0.6}]
    summary = bench_estimate.summary(rows)
    assert summary["worst_factor_before"] == 2.5 and summary["within_3_before"]
    assert summary["worst_factor_after"] == pytest.approx(1 / 0.6) and not summary["within_1_5_after"]
