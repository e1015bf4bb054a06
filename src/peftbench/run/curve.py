"""The validation curve of a run (metric against wall time), and stopping once it reaches a target.

Each evaluation during training adds a point: the step, the examples trained on so far, the seconds
since training began (evaluations included) and without the evaluations, and the validation
metrics. The run folder's `validation_curve.json` holds them all, rewritten atomically at each
evaluation. With `training.target_validation` set, training stops at the first evaluation whose
selection metric reaches the target (a time-to-target run, as MLPerf times training): the time to
target is that point's `seconds`. The speed benchmark (benchmarks/bench_speed.py) uses the same
callback in both of its arms, so that both are timed by one instrument.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

from peftbench.core.directions import higher_is_better
from peftbench.core.files import write_json_atomic
from peftbench.core.paths import RunPaths
from peftbench.core.spec import RunSpec

TIMING_SUFFIXES = ("runtime", "per_second")


def validation_metrics(metrics: dict[str, Any]) -> dict[str, float]:
    """An evaluation's metrics as the Trainer logs them, without the `eval_` prefix and the timings."""
    return {
        k.removeprefix("eval_"): float(v)
        for k, v in metrics.items()
        if k.startswith("eval_") and not k.endswith(TIMING_SUFFIXES)
    }


class ValidationCurve(TrainerCallback):
    """Records every evaluation (see the module) and stops training at `target`, if one is given."""

    def __init__(self, path: Path | None, metric: str, target: float | None = None, higher: bool = True):
        self.path, self.metric, self.target, self.higher = path, metric, target, higher
        self.points: list[dict[str, Any]] = []
        self.start = time.perf_counter()
        self.eval_seconds = 0.0

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.start, self.eval_seconds = time.perf_counter(), 0.0

    def on_evaluate(self, args: Any, state: Any, control: Any, metrics: dict[str, float] | None = None, **kw):
        seconds = time.perf_counter() - self.start
        metrics = metrics or {}
        self.eval_seconds += float(metrics.get("eval_runtime", 0.0))
        validation = validation_metrics(metrics)
        reached = self._reaches(validation.get(self.metric))
        self.points.append(
            {
                "step": int(state.global_step),
                "samples": int(state.global_step * args.train_batch_size * args.gradient_accumulation_steps),
                "seconds": seconds,
                "train_seconds": seconds - self.eval_seconds,
                "validation": validation,
                "reached_target": reached,
            }
        )
        if self.path is not None and state.is_world_process_zero:
            curve = {"metric": self.metric, "target": self.target, "points": self.points}
            write_json_atomic(self.path, curve, durable=False)
        if reached:
            control.should_training_stop = True

    def _reaches(self, value: float | None) -> bool:
        """Whether a target is set and `value` (None: the metric was not evaluated) reaches it."""
        return self.target is not None and value is not None and self.reached(value)

    def reached(self, value: float) -> bool:
        assert self.target is not None
        return value >= self.target if self.higher else value <= self.target

    def time_to_target(self) -> float | None:
        """Seconds from the start of training to the first evaluation at the target; None if never."""
        return next((p["seconds"] for p in self.points if p["reached_target"]), None)


def validation_callbacks(spec: RunSpec, paths: RunPaths, metric: str) -> list[TrainerCallback]:
    """The run's validation curve (stopping at `training.target_validation`), then, for a run whose
    cell is searched by halving, its rung check (run/halving.py; its folder's parent is the sweep's)."""
    from peftbench.run.halving import RungCheck

    higher = higher_is_better(metric)
    callbacks: list[TrainerCallback] = [
        ValidationCurve(paths.validation_curve, metric, spec.training.target_validation, higher)
    ]
    if spec.search is not None and not spec.search.trains_winner:
        callbacks.append(RungCheck(spec, spec.search, paths.root.parent, metric, higher))
    return callbacks
