"""The time estimate (plan/flops.py, plan/time_estimate.py, plan/calibration.py): arithmetic, peaks,
calibration by finished runs, and the bad input of a profile's `cost:`."""

from __future__ import annotations

from pathlib import Path

import pytest

from peftbench.core.errors import ConfigError
from peftbench.core.paths import RunPaths
from peftbench.core.results import Cost, Provenance, RunResult, utc_now, write_result
from peftbench.core.spec import DataSource, RunSpec
from peftbench.plan.calibration import DEFAULT_SPREAD, ONE_RUN_SPREAD, Calibration, calibration_for
from peftbench.plan.cost_settings import DEFAULT_EFFICIENCY
from peftbench.plan.flops import compute_weights, device_of, flops_per_token
from peftbench.plan.loading import load_cluster
from peftbench.plan.time_estimate import estimate_run
from peftbench.plan.token_sample import sampled_tokens_per_example
from tests.conftest import demo_run, write_yaml

LOCAL = load_cluster("local")
VEGA = load_cluster("vega")


def finished(folder: Path, run: RunSpec, train_seconds: float, tokens: int, samples: float) -> None:
    """A success result of `run` with these measured figures, written as a run writes it."""
    cost = Cost(
        wall_seconds=train_seconds + 12.0,
        train_seconds=train_seconds,
        eval_seconds=2.0,
        train_samples_per_second=samples / train_seconds,
        train_tokens=tokens,
    )
    prov = Provenance(
        peftbench_version="0", packages={}, python="3", hostname="h", device="cpu", torch_threads=1, seed=0
    )
    now = utc_now()
    result = RunResult(
        run_id=run.run_id,
        status="success",
        spec=run,
        cost=cost,
        provenance=prov,
        started_at=now,
        finished_at=now,
    )
    write_result(RunPaths(folder / run.run_id).result, result)


def test_flops_per_token_is_6n_for_full_fine_tuning_4n_for_an_adapter_and_checkpointing_adds_2n():
    full, lora = demo_run("full"), demo_run("lora")
    weights = compute_weights(full.model)
    assert weights is not None and 0 < weights < 22_713_216  # MiniLM-L6 without its embedding tables
    assert flops_per_token(full, weights) == 6 * weights
    assert flops_per_token(lora, weights) == 4 * weights
    assert flops_per_token(demo_run("lora", gradient_checkpointing=True), weights) == 6 * weights


def test_virtual_tokens_lengthen_every_sequence_and_nothing_measured_means_the_defaults_said(tmp_path: Path):
    calibration = calibration_for(LOCAL, tmp_path)  # no runs
    lora, prompt = (estimate_run(demo_run(m), LOCAL, calibration).estimate for m in ("lora", "prompt_tuning"))
    assert lora is not None and prompt is not None
    length = sampled_tokens_per_example(demo_run("lora"))  # measured on the bundled data
    assert length is not None and 5 < length < demo_run("lora").training.max_length
    assert prompt.train_s / lora.train_s == pytest.approx((length + 20) / length)
    assert lora.efficiency.value == DEFAULT_EFFICIENCY["none"] and lora.efficiency.spread == DEFAULT_SPREAD
    assert any("30 s to load and save" in a for a in lora.assumptions)


def test_without_the_data_every_example_is_taken_as_max_length_long_and_it_is_said(tmp_path: Path):
    run = demo_run("lora")
    hub = run.task.model_copy(update={"source": DataSource(hub="nobody-here/sentiment")})
    estimate = estimate_run(run.model_copy(update={"task": hub}), LOCAL, Calibration(LOCAL)).estimate
    assert estimate is not None
    said = f"every example {run.training.max_length} tokens long (max_length; none measured)"
    assert any(said in a for a in estimate.assumptions)
    assert not any("training examples" in a for a in estimate.assumptions)  # max_train_samples is set


def test_a_finished_run_calibrates_the_next_estimate_of_its_kind(tmp_path: Path):
    """Its efficiency and tokens per example: the same spec is estimated at its own train seconds, and
    twice the epochs at twice them; another method is left on the default."""
    run = demo_run("lora")
    samples = run.training.max_train_samples * run.training.epochs
    finished(tmp_path / "old-sweep", run, train_seconds=50.0, tokens=int(samples * 37), samples=samples)
    calibration = calibration_for(LOCAL, tmp_path)
    same = estimate_run(run, LOCAL, calibration).estimate
    assert same is not None
    assert same.train_s == pytest.approx(50.0)
    assert same.overhead_s == pytest.approx(10.0)  # wall - train - eval of the finished run
    assert same.efficiency.spread == ONE_RUN_SPREAD and "measured: 1 run(s)" in same.efficiency.source
    assert not any("max_length" in a for a in same.assumptions)  # 37 tokens an example, measured
    longer = estimate_run(demo_run("lora", epochs=2 * run.training.epochs), LOCAL, calibration).estimate
    assert longer is not None and longer.train_s == pytest.approx(100.0)
    other = estimate_run(demo_run("full"), LOCAL, calibration).estimate
    assert other is not None and other.efficiency.source.startswith("default")


def test_a_gpu_profile_uses_its_cited_peak_and_a_gpu_type_without_one_falls_back_by_name(tmp_path: Path):
    run = demo_run("lora").model_copy(
        update={"resources": demo_run("lora").resources.model_copy(update={"gpus": 2})}
    )
    device = device_of(run, VEGA)
    assert (device.name, device.count, device.peak_flops, device.note) == ("a100", 2, 2 * 312e12, None)
    mi250 = {"gpus_per_node": 4, "cpus_per_gpu": 8, "mem_gb_per_gpu": 64}
    slurm = {
        "partition": "gpu",
        "max_time_min": 60,
        "default_gpu_type": "mi250",
        "gpu_types": {"mi250": mi250},
    }
    data = {"launcher": "slurm", "slurm": slurm}
    odd = load_cluster(str(write_yaml(tmp_path / "odd.yaml", data)))
    fallback = device_of(run, odd)
    assert fallback.peak_flops == 2 * 312e12
    note = fallback.note or ""
    assert "no cost.peak_tflops.mi250.bf16" in note and "fallback A100" in note
    assert fallback.note in estimate_run(run, odd, Calibration(odd)).estimate.assumptions  # type: ignore[union-attr]


@pytest.mark.parametrize("value", [0, 1.5, -0.2])
def test_an_efficiency_outside_0_1_is_refused_naming_the_key(tmp_path: Path, value: float):
    path = write_yaml(tmp_path / "site.yaml", {"launcher": "local", "cost": {"efficiency": {"none": value}}})
    with pytest.raises(ConfigError) as err:
        load_cluster(str(path))
    [problem] = err.value.problems
    assert problem.file == str(path) and problem.key == "cost.efficiency.none"
    assert str(value) in str(problem)


def test_an_efficiency_for_an_unknown_engine_is_refused_with_the_engines(tmp_path: Path):
    path = write_yaml(tmp_path / "site.yaml", {"launcher": "local", "cost": {"efficiency": {"zero4": 0.2}}})
    with pytest.raises(ConfigError, match=r"zero4.*zero3"):
        load_cluster(str(path))


@pytest.mark.parametrize("name", ["local", "dev", "dev2", "vega", "arnes", "komondor"])
def test_every_shipped_profile_states_its_peak(name: str):
    """CPU profiles their measured per-core peak; GPU sites the data sheets' dense figures."""
    profile = load_cluster(name)
    device = "cpu" if profile.slurm is None or not profile.slurm.gpu_types else profile.slurm.default_gpu_type
    assert profile.cost.peak_tflops[device]["bf16" if device != "cpu" else "fp32"] > 0


def test_a_run_that_resumed_counts_its_whole_training_time_not_its_last_trys(tmp_path: Path):
    """Resumed at step 3 of 6, its result holds the last try's 25 s: the run took 50 s."""
    run = demo_run("lora")  # 48 examples × 2 epochs at batch 16: 6 steps
    samples = run.training.max_train_samples * run.training.epochs
    finished(tmp_path / "s", run, train_seconds=25.0, tokens=int(samples * 30), samples=samples)
    path = RunPaths(tmp_path / "s" / run.run_id).result
    path.write_text(path.read_text().replace('"resumed_from_step": null', '"resumed_from_step": 3'))
    estimate = estimate_run(run, LOCAL, calibration_for(LOCAL, tmp_path)).estimate
    assert estimate is not None and estimate.train_s == pytest.approx(50.0)
