"""Everything checked before anything runs: cluster profile, sweep, resources, run folder.

`load_plan` gathers the problems of all of them into one ConfigError, so a user fixes a sweep in
one pass, and nothing is ever submitted from a plan with a problem.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from peftbench.config import ClusterProfile, RunSpec, SweepSpec, load_cluster
from peftbench.errors import ConfigError, Problem
from peftbench.sweep import expand_sweep, load_sweep


@dataclass(frozen=True)
class SweepPlan:
    profile: ClusterProfile
    spec: SweepSpec
    runs: list[RunSpec]
    runs_dir: Path

    @property
    def sweep_dir(self) -> Path:
        return self.runs_dir / self.spec.name


def load_plan(sweep_file: Path, cluster: str, runs_dir: Path | None = None) -> SweepPlan:
    """Load and check the cluster profile and the sweep together; one error lists every problem."""
    from peftbench.launch.slurm import check_writable, resource_problems

    problems: list[Problem] = []
    profile = spec = None
    try:
        profile = load_cluster(cluster)
    except ConfigError as err:
        problems += err.problems
    try:
        spec = load_sweep(sweep_file)
    except ConfigError as err:
        problems += err.problems
    if profile is None or spec is None:
        raise ConfigError(problems)
    runs = expand_sweep(spec, file=str(sweep_file))
    root = Path(runs_dir or profile.runs_dir)
    problems += check_writable(root / spec.name, str(sweep_file))
    if profile.launcher == "slurm":
        problems += resource_problems(runs, profile, str(sweep_file))
    if problems:
        raise ConfigError(problems)
    return SweepPlan(profile, spec, runs, root)
