"""What finished runs teach the time estimate: measured efficiency, tokens per example, overhead.

Every success `result.json` under the runs folder (any sweep) holds its spec, its train, evaluation
and wall seconds, the training examples it processed per second and the non-padding tokens it saw,
and the device it ran on. From these the estimate reads, for a new run:

- the efficiency (share of the device's peak) of finished runs of the same model × method × engine
  × device; else of the same method × engine × device on another model; else the profile's default
  for the engine (plan/cost_settings.py);
- the mean tokens per training example of finished runs of the same task, tokenizer (model) and
  max_length, instead of assuming every example is max_length long;
- the training examples of a finished run of the same task and max_train_samples, when the data's
  own size is not known here;
- the seconds a run spends outside training and evaluation (loading the model, saving), by model.

A run that timed out and resumed from its checkpoint counts every token but only its last try's
seconds: its whole training time is taken as those seconds × its steps ÷ the steps of that try, so the
next estimate learns from it too. A result that cannot be read is left out (collect reports those).
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from peftbench.core.results import RunResult, UnreadableResult, read_result
from peftbench.core.spec import RunSpec
from peftbench.plan.flops import compute_weights, device_of, flops_per_token, virtual_tokens
from peftbench.plan.schema import ClusterProfile

ONE_RUN_SPREAD = 1.5  # the uncertainty said of an efficiency measured on one run of the same kind
OTHER_MODEL_SPREAD = 2.0  # measured on the same method and engine, another model
DEFAULT_SPREAD = 3.0  # no run measured: the engine's default


@dataclass(frozen=True)
class FinishedRun:
    """What the estimate reads of one success result."""

    spec: RunSpec
    device: str  # provenance.device, lowercased: "cpu" or the CUDA device's name
    threads: int  # torch threads (the cores a CPU run computed on)
    train_seconds: float
    eval_seconds: float
    wall_seconds: float
    samples: float  # training examples processed, all epochs
    train_tokens: int
    total_params: int  # the model's, as the run counted them: N when its config is no longer here

    @property
    def tokens_per_example(self) -> float:
        return self.train_tokens / self.samples


def finished_run(result: RunResult) -> FinishedRun | None:
    """The figures of a success result that trained; None for anything else."""
    cost, prov = result.cost, result.provenance
    if result.status != "success" or cost is None or prov is None or cost.train_seconds <= 0:
        return None
    samples = cost.train_samples_per_second * cost.train_seconds
    if samples <= 0 or cost.train_tokens <= 0:
        return None
    return FinishedRun(
        result.spec,
        prov.device.lower(),
        prov.torch_threads,
        whole_train_seconds(result, samples),
        cost.eval_seconds,
        cost.wall_seconds,
        samples,
        cost.train_tokens,
        cost.total_params,
    )


def whole_train_seconds(result: RunResult, samples: float) -> float:
    """The run's train seconds over all its tries. A run resumed from step k records only its last
    try's seconds (and every sample and token): those seconds × its steps ÷ the steps of that try."""
    assert result.cost is not None
    seconds, resumed = result.cost.train_seconds, result.resumed_from_step
    if not resumed:
        return seconds
    t = result.spec.training
    steps = samples / (t.batch_size * t.gradient_accumulation_steps * max(result.cost.world_size, 1))
    return seconds * steps / max(steps - resumed, 1.0)


def finished_runs(runs_dir: Path) -> list[FinishedRun]:
    """Every success result under `runs_dir`, one sweep folder deep (`<runs_dir>/<sweep>/<run>/`)."""
    found = []
    for path in sorted(runs_dir.glob("*/*/result.json")):
        try:
            run = finished_run(read_result(path))
        except UnreadableResult:
            continue
        if run is not None:
            found.append(run)
    return found


def measured_efficiency(run: FinishedRun, profile: ClusterProfile) -> float | None:
    """The share of its device's peak `run` reached in training, by the estimate's own arithmetic."""
    weights = compute_weights(run.spec.model) or run.total_params  # gpu-check's models are built and removed
    if not weights:
        return None
    device = device_of(run.spec, profile)
    peak = device.peak_flops
    if device.name == "cpu":  # the cores it really computed on
        peak = peak / device.count * max(run.threads, 1)
    positions = run.train_tokens + run.samples * virtual_tokens(run.spec)
    return flops_per_token(run.spec, weights) * positions / (run.train_seconds * peak)


def same_device(run_device: str, finished: str) -> bool:
    """A profile's device name (`cpu`, a GPU type: `a100`) against a result's (`nvidia a100-sxm4-40gb`)."""
    return run_device == finished if run_device == "cpu" else run_device.lower() in finished


@dataclass(frozen=True)
class Efficiency:
    """The efficiency an estimate uses, where it came from and how far to trust it."""

    value: float
    source: str
    spread: float  # the truth is within estimate / spread .. estimate × spread, as far as we know


@dataclass
class Calibration:
    """Finished runs, indexed the ways the estimate asks (module docstring)."""

    profile: ClusterProfile
    runs: list[FinishedRun] = field(default_factory=list)
    _efficiency: dict[tuple, list[float]] = field(default_factory=lambda: defaultdict(list))
    _method: dict[tuple, list[float]] = field(default_factory=lambda: defaultdict(list))
    _tokens: dict[tuple, list[float]] = field(default_factory=lambda: defaultdict(list))
    _examples: dict[tuple, list[float]] = field(default_factory=lambda: defaultdict(list))
    _overhead: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))

    def add(self, runs: Iterable[FinishedRun]) -> None:
        for run in runs:
            self.runs.append(run)
            spec = run.spec
            eff = measured_efficiency(run, self.profile)
            kind = (spec.method, spec.training.engine, run.device)
            if eff is not None:
                self._efficiency[(spec.model.source, *kind)].append(eff)
                self._method[kind].append(eff)
            self._tokens[_token_key(spec)].append(run.tokens_per_example)
            if spec.training.max_steps is None:
                self._examples[_examples_key(spec)].append(run.samples / spec.training.epochs)
            other = run.wall_seconds - run.train_seconds - run.eval_seconds
            self._overhead[spec.model.source].append(max(other, 0.0))

    def efficiency(self, run: RunSpec, device: str) -> Efficiency:
        """Measured on the same model × method × engine × device, else the same method on another model,
        else the engine's default."""
        engine = run.training.engine
        same = _matching(self._efficiency, (run.model.source, run.method, engine), device)
        if same:
            spread = max(ONE_RUN_SPREAD, max(same) / min(same))
            said = f"{len(same)} run(s) of {run.model.name} × {run.method} × {engine} on {device}"
            return Efficiency(statistics.median(same), f"measured: {said}", spread)
        other = _matching(self._method, (run.method, engine), device)
        if other:
            said = f"{len(other)} run(s) of {run.method} × {engine} on {device}, other models"
            return Efficiency(statistics.median(other), f"measured: {said}", OTHER_MODEL_SPREAD)
        from peftbench.plan.cost_settings import DEFAULT_EFFICIENCY

        own = self.profile.cost.efficiency.get(engine)
        if own is not None:
            return Efficiency(own, f"profile: cost.efficiency.{engine}", DEFAULT_SPREAD)
        said = f"default for {engine} (no run measured)"
        return Efficiency(DEFAULT_EFFICIENCY[engine], said, DEFAULT_SPREAD)

    def tokens_per_example(self, run: RunSpec) -> float | None:
        seen = self._tokens.get(_token_key(run))
        return statistics.median(seen) if seen else None

    def examples(self, run: RunSpec) -> float | None:
        seen = self._examples.get(_examples_key(run))
        return statistics.median(seen) if seen else None

    def overhead_s(self, run: RunSpec) -> float | None:
        seen = self._overhead.get(run.model.source)
        return statistics.median(seen) if seen else None


def _matching(index: dict[tuple, list[float]], key: tuple, device: str) -> list[float]:
    found = [values for (*k, d), values in index.items() if tuple(k) == key and same_device(device, d)]
    return [e for values in found for e in values]


def _token_key(spec: RunSpec) -> tuple:
    return (spec.task.name, spec.model.source, spec.training.max_length)


def _examples_key(spec: RunSpec) -> tuple:
    return (spec.task.name, spec.training.max_train_samples)


def calibration_for(profile: ClusterProfile, runs_dir: Path) -> Calibration:
    """The calibration every estimate of a plan shares: the finished runs under `runs_dir`."""
    calibration = Calibration(profile)
    calibration.add(finished_runs(runs_dir))
    return calibration
