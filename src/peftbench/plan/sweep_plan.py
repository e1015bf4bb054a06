"""Everything checked before anything runs: cluster profile, sweep, resources, run folder, the module
names methods list, training that cannot fit its time limit.

`load_plan` gathers the problems of all of them into one ConfigError, so a user fixes a sweep in
one pass, and nothing is ever submitted from a plan with a problem.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from peftbench.core.errors import ConfigError, Problem
from peftbench.core.spec import RunSpec
from peftbench.plan.budget import (
    SweepCost,
    SweepProgress,
    auto_problems,
    budget_problems,
    needs_estimates,
    sweep_cost,
    sweep_progress,
)
from peftbench.plan.disk import SweepDisk, disk_problems, sweep_disk
from peftbench.plan.judging import judge_notes, judge_problems
from peftbench.plan.loading import Sweep, load_cluster, load_sweep
from peftbench.plan.memory import (
    GB,
    Fit,
    MemoryEstimate,
    ParameterCount,
    assumed_or_counted,
    count_from_config,
    estimate_run,
    fit_on,
    forwarded_sequences,
    trainable_from_config,
)
from peftbench.plan.module_names import module_name_check
from peftbench.plan.packing import needs_planned_memory, packing_problems
from peftbench.plan.placement import PlannedRun, plan_runs
from peftbench.plan.resources import (
    check_writable,
    gpu_type_of,
    process_problems,
    resource_problems,
    unset_site_facts,
)
from peftbench.plan.schema import ClusterProfile, SweepSpec
from peftbench.plan.search_plan import early_rung_notes
from peftbench.plan.training_time import training_time_problems


@dataclass(frozen=True)
class SweepPlan:
    profile: ClusterProfile
    spec: SweepSpec
    runs: list[RunSpec]
    runs_dir: Path
    # What only a submission refuses (FILL_ME site facts, runs that do not fit the site's GPUs,
    # models whose size is unknown here): a preview shows the plan and these as warnings.
    warnings: list[Problem] = field(default_factory=list)
    # What no command refuses but the user should know: GPU-memory estimates that rest on an
    # assumption (a task that does not bound its candidates), each with the setting that bounds it.
    notes: list[Problem] = field(default_factory=list)
    # On a Slurm site, run_id -> what the plan settled for it (shape, pack, what it waits for, time).
    placed: dict[str, PlannedRun] = field(default_factory=dict)
    # The GPU-memory estimates the checks made, by run id (each run estimated once).
    memory: dict[str, MemoryRow] = field(default_factory=dict)
    # The time estimates, when the checks needed them (time_min: auto, a budget).
    estimates: SweepCost | None = None
    # The disk the runs still to run need at their peak, beside the room there is (plan/disk.py).
    disk: SweepDisk | None = None

    @property
    def sweep_dir(self) -> Path:
        return self.runs_dir / self.spec.name

    def memory_table(self) -> list[MemoryRow]:
        """Every run's memory row, in the plan's order: the estimates the checks made, and the rest
        estimated now (`peftbench plan` shows them all)."""
        missing = [run for run in self.runs if run.run_id not in self.memory]
        made = {row.run.run_id: row for row in memory_rows(missing, self.profile)} if missing else {}
        return [self.memory.get(run.run_id) or made[run.run_id] for run in self.runs]

    def cost(self) -> SweepCost:
        """Every run's time estimate and the totals (`sweep --dry-run` and `plan` show them)."""
        return self.estimates or sweep_cost(self.runs, self.profile, self.runs_dir, self.sweep_dir)

    def progress(self) -> SweepProgress:
        """Runs done, GPU-hours spent against the estimate, the time left (`status`)."""
        parallel = self.profile.slurm.array_parallelism if self.profile.slurm else 1
        return sweep_progress(self.runs, self.profile, self.runs_dir, self.sweep_dir, parallel)


@dataclass(frozen=True)
class _SiteChecks:
    problems: list[Problem]
    warnings: list[Problem]
    planned: dict[str, int | None]  # run_id -> per-GPU memory estimate, for the runs that pack by it
    rows: list[MemoryRow] = field(default_factory=list)  # the estimates made


def load_plan(
    sweep_file: Path,
    cluster: str,
    runs_dir: Path | None = None,
    check_memory: bool = True,
    profiles: Path | None = None,
    submitting: bool = True,
    force: bool = False,
) -> SweepPlan:
    """Load and check the cluster profile and the sweep together; one error lists every problem.

    `check_memory=False` leaves out the GPU-memory check (`peftbench plan` shows it as a table).
    What depends on the site (FILL_ME facts, runs that do not fit its GPUs, models of unknown size)
    is a problem only when `submitting`; a preview shows the plan and carries them as `warnings`,
    each under the name of the file to fix. On a Slurm site every run is placed (`SweepPlan.placed`).
    A budget the estimate exceeds (plan/budget.py), or a disk peak over the free space or the
    profile's quota (plan/disk.py), refuses a submission unless `force`.
    """
    profile, sweep = _profile_and_sweep(sweep_file, cluster, profiles)
    spec, runs, file = sweep.spec, sweep.runs, str(sweep_file)
    root = Path(runs_dir or profile.runs_dir)
    problems = process_problems(runs, profile, file)
    problems += training_time_problems(runs, profile, spec, file)
    modules = module_name_check(runs, file)
    problems += modules.problems + judge_problems(runs, profile, file)
    # a read-only run folder refuses a submission; `status` and a preview only read it
    warnings = check_writable(root / spec.name, file) + unset_site_facts(profile)
    site = _SiteChecks([], [], {})
    if profile.launcher == "slurm":
        site = _slurm_site_checks(runs, profile, spec, file, check_memory)
    problems, warnings = problems + site.problems, warnings + site.warnings
    cost, refused = _cost_checks(sweep, profile, root, file, force)
    warnings += refused
    disk = _disk(runs, profile, root / spec.name, site.rows)
    warnings += [] if force else disk_problems(disk, profile)
    if submitting:
        problems, warnings = warnings + problems, []
    if problems:
        raise ConfigError(problems)
    notes = modules.notes + assumed_sequences([r for r in runs if r.resources.gpus], spec, file)
    notes += judge_notes(runs, spec.name, str(root), file) + early_rung_notes(runs, file)
    placed = _placed(runs, profile, site.planned, cost)
    memory = {row.run.run_id: row for row in site.rows}
    return SweepPlan(profile, spec, runs, root, warnings, notes, placed, memory, cost, disk)


def _placed(
    runs: list[RunSpec], profile: ClusterProfile, planned: dict[str, int | None], cost: SweepCost | None
) -> dict[str, PlannedRun]:
    """On a Slurm site, every run placed; `auto` limits from the time estimates."""
    if profile.launcher != "slurm":
        return {}
    return plan_runs(runs, profile, planned, cost.wall_seconds if cost else {})


def _cost_checks(
    sweep: Sweep, profile: ClusterProfile, root: Path, file: str, force: bool
) -> tuple[SweepCost | None, list[Problem]]:
    """The time estimates, when `auto` limits or a budget need them, and what they refuse."""
    spec, runs = sweep.spec, sweep.runs
    if not needs_estimates(runs, spec, profile):
        return None, []
    cost = sweep_cost(runs, profile, root, root / spec.name)
    over = [] if force else budget_problems(cost, spec, profile, root, root / spec.name, file)
    return cost, auto_problems(cost, file) + over


def _disk(runs: list[RunSpec], profile: ClusterProfile, sweep_dir: Path, rows: list[MemoryRow]) -> SweepDisk:
    """The sweep's disk, from the parameter counts the memory check made where it made them."""
    counted = {id(r.run): (r.estimate.total_params, r.estimate.trainable) for r in rows if r.estimate}
    return sweep_disk(runs, profile, sweep_dir, counted)


def _profile_and_sweep(sweep_file: Path, cluster: str, profiles: Path | None) -> tuple[ClusterProfile, Sweep]:
    """Both files loaded, or one ConfigError with the problems of both."""
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
    return profile, sweep


def _slurm_site_checks(
    runs: list[RunSpec], profile: ClusterProfile, spec: SweepSpec, file: str, check_memory: bool
) -> _SiteChecks:
    """What the site cannot give, and the memory estimates packing needs (each run estimated once)."""
    gpu_runs = [r for r in runs if r.resources.gpus]
    rows = memory_rows([r for r in gpu_runs if check_memory or needs_planned_memory(r)], profile)
    planned = {row.run.run_id: row.estimate.total if row.estimate else None for row in rows}
    problems = resource_problems(runs, profile, file) + packing_problems(runs, profile, file, planned)
    warnings = memory_problems(rows, profile, file) + unknown_models(rows, spec, file) if check_memory else []
    return _SiteChecks(problems, warnings, planned, rows)


@dataclass(frozen=True)
class MemoryRow:
    """One run's GPU memory estimate; `fit` only where the profile names the GPU's memory."""

    run: RunSpec
    estimate: MemoryEstimate | None  # None: the model's config is not available here
    fit: Fit | None
    config_from: str = "cache"  # cache | table | run (another run's model) | unknown

    @property
    def refused(self) -> bool:
        """The estimate does not fit the site's GPU: a submission refuses the run."""
        return self.fit is not None and not self.fit.fits


def memory_rows(runs: list[RunSpec], profile: ClusterProfile) -> list[MemoryRow]:
    """Each run's per-GPU estimate (on its own world size and engine), and whether it fits the GPU.

    Nothing goes to the network (models.shapes). Each model is counted once, each method's trainable
    parameters once per model, and each estimate made once per (model, method, engine, GPUs and the
    settings that size activations): a 10,000-run grid over learning rates and seeds costs a few.
    """
    from peftbench.models.shapes import planning_config

    configs: dict[tuple, tuple[Any, str]] = {}
    counts: dict[tuple, ParameterCount] = {}
    trainables: dict[tuple, int] = {}
    made: dict[tuple, tuple[MemoryEstimate, Fit | None]] = {}
    rows = []
    for run in runs:
        model = (run.model.source, run.model.gguf_file)
        if model not in configs:
            configs[model] = planning_config(run.model)
        config, origin = configs[model]
        if config is None:
            rows.append(MemoryRow(run, None, None, origin))
            continue
        kind = gpu_type_of(run, profile)
        gpu = (kind.memory_gb, kind.gpus_per_node) if kind is not None and kind.memory_gb else None
        method = (*model, run.model.family, run.method, json.dumps(run.params, sort_keys=True))
        t = run.training
        key = (*method, t.engine, run.world_size, t.precision, t.batch_size, t.eval_batch_size, t.max_length)
        sequences = (forwarded_sequences(run.task, True), forwarded_sequences(run.task, False))
        key += (t.uses_gradient_checkpointing, run.task.type, run.task.scoring, sequences, gpu)
        key += (t.effective_max_new_tokens,)  # generating tasks' key-value cache
        if key not in made:
            if model not in counts:
                counts[model] = count_from_config(config)
            if method not in trainables:
                trainables[method] = trainable_from_config(run, config)
            params, trainable = counts[model], trainables[method]
            if gpu is None:
                made[key] = (estimate_run(run, config, run.world_size, None, trainable, params), None)
            else:
                fit = fit_on(run, config, gpu[0] * GB, gpu[1], params=params, trainable=trainable)
                made[key] = (fit.estimate, fit)
        rows.append(MemoryRow(run, *made[key], origin))
    return rows


def memory_problems(rows: list[MemoryRow], profile: ClusterProfile, file: str) -> list[Problem]:
    """GPU runs that cannot fit the profile's GPUs, each with the smallest change that fits."""
    problems, seen = [], set()
    for row in rows:
        run, fit = row.run, row.fit
        where = (run.label, run.model.name, run.task.name)
        if fit is None or fit.fits or where in seen:
            continue
        seen.add(where)  # one message per grid, not per learning rate and seed
        e = fit.estimate
        batch = " of an evaluation batch" if e.evaluation_bound else ""
        batch += (
            f", key-value cache {e.kv_cache / GB:.1f} of generating answers"
            if e.evaluation_bound and e.kv_cache
            else ""
        )
        message = (
            f"{run.model.name} on {run.task.name} needs about {e.total / GB:.1f} GB per GPU "
            f"(weights {e.weights / GB:.1f}, training state {e.training_state / GB:.1f}, activations "
            f"{e.activations / GB:.1f}{batch}) with {e.backend} on {e.gpus} GPU(s); a GPU of "
            f"'{profile.name}' has {fit.gpu_bytes / GB:.0f} GB. Smallest that fits: {fit.suggestion}."
        )
        problems.append(Problem(file, f"methods.{run.label}", message))
    return problems


def unknown_models(rows: list[MemoryRow], spec: SweepSpec, file: str) -> list[Problem]:
    """GPU models whose size is known neither to the HF cache nor to the shipped table: one each."""
    names = [m if isinstance(m, str) else m.name for m in spec.models]
    unknown = dict.fromkeys(
        (row.run.model.name, row.run.model.source) for row in rows if row.config_from == "unknown"
    )
    return [
        Problem(
            file,
            f"models[{names.index(name)}]" if name in names else "models",
            f"The size of {name!r} ({source}) is unknown here: its config is neither in the HF "
            f"cache nor in peftbench's table of known models, so its GPU memory cannot be checked. Run "
            f"`peftbench fetch {file}` where the hub is reachable (into the HF_HOME this machine reads).",
        )
        for name, source in unknown
    ]


def assumed_sequences(runs: list[RunSpec], spec: SweepSpec, file: str) -> list[Problem]:
    """GPU runs whose training estimate assumes how many sequences an example forwards (a cloze task
    without `max_train_choices`, choices neither in columns nor labels): one note per task, naming
    the setting that bounds it. (Evaluation scores every candidate of a cloze example whatever the
    sweep says; that part of the estimate always assumes ASSUMED_SEQUENCES, as docs say.)"""
    names = [t if isinstance(t, str) else t.name for t in spec.tasks]
    notes: dict[str, Problem] = {}
    for run in runs:
        task = run.task
        if task.name in notes or assumed_or_counted(task, training=True) is not None:
            continue
        assumed = forwarded_sequences(task, training=True)
        if task.type == "cloze_choice":
            key = f"task_settings.{task.name}.max_train_choices"
            message = (
                f"Each training example of {task.name!r} is scored on every candidate its passage has, "
                f"however many, so the GPU-memory estimate assumes {assumed}. Set {key} (e.g. 8; the "
                "gold candidates are kept first) to bound training memory."
            )
        else:
            key = f"tasks[{names.index(task.name)}]" if task.name in names else "tasks"
            message = (
                f"The examples of {task.name!r} have a number of choices its spec does not state, so the "
                f"GPU-memory estimate assumes {assumed}. Give `labels`, one per choice, to count them."
            )
        notes[task.name] = Problem(file, key, message)
    return list(notes.values())
