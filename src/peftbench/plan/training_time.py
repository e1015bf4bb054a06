"""Training that cannot fit the time a run has, at any speed: refused before anything runs.

The planner does not know how fast a run trains (a cost estimate will), but it knows a floor.
Every epoch is at least one optimizer step (a training split holds at least one example), and
`max_steps`, when given, is exactly that many; every step is at least one forward and backward pass
of the Trainer, and no such pass (forward, backward, optimizer step, scheduler, callbacks) takes less
than MIN_SECONDS_PER_STEP on any hardware. A run whose floor is over all the time it can have is
refused naming the key that asks for it (`epochs: 1e9` is a typo, not a plan); anything under it
passes, however long it would really take.

The time a run can have: on a Slurm site its time limit (resources.time_min, at most the partition's)
on each of its tries (the first and `max_num_timeout` requeues, each resuming from the last
checkpoint); on the local launcher, which stops no run, the limit the run states (resources.time_min).
"""

from __future__ import annotations

import math

from peftbench.core.errors import Problem
from peftbench.core.spec import RunSpec
from peftbench.plan.schema import ClusterProfile, SweepSpec

MIN_SECONDS_PER_STEP = 0.001
"""A floor, not an estimate: the Trainer's own Python work per step (loss, backward, optimizer,
scheduler, callbacks, logging) is milliseconds on any machine, before the model computes anything."""


def least_steps(run: RunSpec) -> int:
    """The fewest optimizer steps the run's settings can mean: `max_steps`, else one per epoch."""
    training = run.training
    return training.max_steps if training.max_steps is not None else math.ceil(training.epochs)


def time_available(run: RunSpec, profile: ClusterProfile) -> tuple[float, str]:
    """(seconds the run can train at most, how they are made up)."""
    minutes = run.resources.time_min
    assert minutes != "auto", "a run whose limit is its estimate has no floor to check"
    if profile.slurm is None:
        return 60.0 * minutes, f"{minutes} min (resources.time_min; the local launcher stops no run)"
    limit, tries = min(minutes, profile.slurm.max_time_min), 1 + profile.slurm.max_num_timeout
    why = f"{limit} min (resources.time_min) on each of {tries} tries on '{profile.name}' (max_num_timeout)"
    return 60.0 * limit * tries, why


def training_time_problems(
    runs: list[RunSpec], profile: ClusterProfile, spec: SweepSpec, file: str
) -> list[Problem]:
    """A problem per block and value whose steps cannot fit the run's time at MIN_SECONDS_PER_STEP."""
    problems: dict[tuple[str, str, float], Problem] = {}
    for run in runs:
        if run.resources.time_min == "auto":  # its limit is made from its estimate (plan/time_estimate.py)
            continue
        key = "max_steps" if run.training.max_steps is not None else "epochs"
        value = getattr(run.training, key)
        where = (run.label, key, value)
        if where in problems:
            continue
        seconds, why = time_available(run, profile)
        fit = int(seconds / MIN_SECONDS_PER_STEP)
        if least_steps(run) <= fit:
            continue
        problems[where] = _too_long(run, key, spec, file, fit, why)
    return list(problems.values())


def _too_long(run: RunSpec, key: str, spec: SweepSpec, file: str, fit: int, why: str) -> Problem:
    value = getattr(run.training, key)
    each = "at least one optimizer step each"
    steps = f"{value:,} optimizer steps" if key == "max_steps" else f"{value:g} epochs ({each})"
    written = f"methods.{run.label}.{key}" if key in spec.methods.get(run.label, {}) else f"training.{key}"
    return Problem(
        file,
        written,
        f"{steps} cannot fit the run's time limit even at {MIN_SECONDS_PER_STEP * 1000:g} ms a step, "
        f"faster than any run trains: it has {why}, room for at most {fit:,} steps. "
        "Lower it, or raise resources.time_min.",
        value,
    )
