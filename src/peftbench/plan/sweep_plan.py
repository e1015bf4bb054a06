"""Everything checked before anything runs: cluster profile, sweep, resources, run folder.

`load_plan` gathers the problems of all of them into one ConfigError, so a user fixes a sweep in
one pass, and nothing is ever submitted from a plan with a problem.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from peftbench.core.errors import ConfigError, Problem
from peftbench.core.spec import RunSpec
from peftbench.plan.loading import load_cluster, load_sweep
from peftbench.plan.memory import GB, Fit, MemoryEstimate, estimate_run, fit_on, load_model_config
from peftbench.plan.resources import gpu_type_of, process_problems
from peftbench.plan.schema import ClusterProfile, SweepSpec


@dataclass(frozen=True)
class SweepPlan:
    profile: ClusterProfile
    spec: SweepSpec
    runs: list[RunSpec]
    runs_dir: Path
    unset_facts: list[Problem] = field(default_factory=list)  # FILL_ME site facts (only when previewing)

    @property
    def sweep_dir(self) -> Path:
        return self.runs_dir / self.spec.name


def load_plan(
    sweep_file: Path,
    cluster: str,
    runs_dir: Path | None = None,
    check_memory: bool = True,
    profiles: Path | None = None,
    submitting: bool = True,
) -> SweepPlan:
    """Load and check the cluster profile and the sweep together; one error lists every problem.

    `check_memory=False` leaves out the GPU-memory check (`peftbench plan` shows it as a table).
    Site facts still FILL_ME are problems only when `submitting`; a preview carries them as
    `unset_facts`, to be shown as warnings under the profile's name.
    """
    from peftbench.plan.resources import check_writable, resource_problems, unset_site_facts

    problems: list[Problem] = []
    profile = sweep = None
    try:
        profile = load_cluster(cluster, profiles)
    except ConfigError as err:
        problems += err.problems
    try:
        sweep = load_sweep(sweep_file)
    except ConfigError as err:
        problems += err.problems
    if profile is None or sweep is None:
        raise ConfigError(problems)
    spec, runs = sweep.spec, sweep.runs
    root = Path(runs_dir or profile.runs_dir)
    problems += check_writable(root / spec.name, str(sweep_file))
    problems += process_problems(runs, profile, str(sweep_file))
    if profile.launcher == "slurm":
        problems += resource_problems(runs, profile, str(sweep_file))
        problems += memory_problems(runs, profile, str(sweep_file)) if check_memory else []
    unset = unset_site_facts(profile)
    if submitting:
        problems, unset = unset + problems, []
    if problems:
        raise ConfigError(problems)
    return SweepPlan(profile, spec, runs, root, unset)


@dataclass(frozen=True)
class MemoryRow:
    """One run's GPU memory estimate; `fit` only where the profile names the GPU's memory."""

    run: RunSpec
    estimate: MemoryEstimate | None  # None: the model's config is not available here
    fit: Fit | None


def memory_rows(runs: list[RunSpec], profile: ClusterProfile) -> list[MemoryRow]:
    """Each run's per-GPU estimate (on its own world size and engine), and whether it fits the GPU."""
    configs: dict[str, object] = {}
    rows = []
    for run in runs:
        if run.model.source not in configs:
            configs[run.model.source] = load_model_config(run.model)
        config = configs[run.model.source]
        kind = gpu_type_of(run, profile)
        if config is None:
            rows.append(MemoryRow(run, None, None))
        elif kind is None or kind.memory_gb is None:
            rows.append(MemoryRow(run, estimate_run(run, config, run.world_size), None))
        else:
            fit = fit_on(run, config, kind.memory_gb * GB, kind.gpus_per_node)
            rows.append(MemoryRow(run, fit.estimate, fit))
    return rows


def memory_problems(runs: list[RunSpec], profile: ClusterProfile, file: str) -> list[Problem]:
    """GPU runs that cannot fit the profile's GPUs, each with the smallest change that fits."""
    problems, seen = [], set()
    for row in memory_rows([r for r in runs if r.resources.gpus], profile):
        run, fit = row.run, row.fit
        where = (run.label, run.model.name, run.task.name)
        if fit is None or fit.fits or where in seen:
            continue
        seen.add(where)  # one message per grid, not per learning rate and seed
        e = fit.estimate
        message = (
            f"{run.model.name} on {run.task.name} needs about {e.total / GB:.1f} GB per GPU "
            f"(weights {e.weights / GB:.1f}, training state {e.training_state / GB:.1f}, activations "
            f"{e.activations / GB:.1f}) with {e.backend} on {e.gpus} GPU(s); a GPU of '{profile.name}' has "
            f"{fit.gpu_bytes / GB:.0f} GB. Smallest that fits: {fit.suggestion}."
        )
        problems.append(Problem(file, f"methods.{run.label}", message))
    return problems
