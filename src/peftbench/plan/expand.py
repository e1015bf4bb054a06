"""A valid SweepSpec becomes its RunSpecs: models × tasks × method grids × seeds, parents first.

`expand_sweep` resolves the sweep's models and tasks (`plan.sweep_entries`), splits each method
block into a grid (`plan.method_grid`), refuses a runaway grid before expanding it, and makes each
run once, asking the method and the task type whether they can run it, finding each child's
parent run and refusing duplicate run ids. It adds every problem to one ConfigError.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
from dataclasses import dataclass, field

from peftbench.core.errors import ConfigError, Problem
from peftbench.core.search import winner_source
from peftbench.core.search_settings import SearchSettings
from peftbench.core.spec import RUN_SOURCE, ModelRef, ResourceRequest, RunSpec, TaskSpec
from peftbench.methods import METHODS, MethodParams
from peftbench.models.families import FAMILY_TRAITS
from peftbench.plan.method_grid import GridPoint, MethodGrid, method_grid, validated_points
from peftbench.plan.schema import SweepSpec
from peftbench.plan.search_plan import search_problems, split_seeds, winner_search
from peftbench.plan.sweep_entries import resolve_entries
from peftbench.tasks import TASK_TYPES


def refusal(
    method_name: str, params: MethodParams, model: ModelRef, task: TaskSpec, resources: ResourceRequest
) -> str | None:
    """Why `method_name` cannot train `model` on `task` with `resources` (a sentence), or None.

    The method's and the task type's `unsupported_reason`, asked for every run before anything is
    submitted.
    """
    traits = FAMILY_TRAITS[model.family]
    who = f"model {model.name!r} (family {model.family})"
    reason = METHODS[method_name].unsupported_reason(traits, params, resources)
    if reason is not None:
        return f"Method {method_name!r} cannot train {who}: {reason}."
    reason = TASK_TYPES[task.type].unsupported_reason(task, traits, METHODS[method_name].traits)
    if reason is not None:
        return f"Task {task.name!r} ({task.type}) cannot run on {who} with method {method_name!r}: {reason}."
    return None


def expand_sweep(spec: SweepSpec, file: str = "<sweep>") -> list[RunSpec]:
    """models × tasks × methods (each its own grid) × seeds -> RunSpecs, in a stable order.

    A block with a `parent` is expanded after its parent, and its runs come after every run they
    start from (a launcher running the list in order runs parents first).
    Raises ConfigError listing every problem when the spec names something unknown or invalid.
    """
    problems: list[Problem] = []
    models, tasks = resolve_entries(spec, file, problems)
    grids = [grid for label in spec.methods if (grid := method_grid(spec, label, file, problems)) is not None]
    _refuse_runaway(spec, grids, file, problems)
    points = {g.label: validated_points(spec, g, file, problems) for g in grids}
    for g in grids:
        problems.extend(search_problems(file, g.label, g.own_search, g.search, points[g.label]))
    by_label = {g.label: g for g in grids}
    depth = _depths(by_label, file, problems)
    expansion = _Expansion(spec, file, by_label, depth, problems)
    for grid_i, grid in sorted(enumerate(grids), key=lambda g: depth.get(g[1].label, 0)):
        if grid.label in depth:
            expansion.add_grid(grid_i, grid, models, tasks, points[grid.label])
    if problems:
        raise ConfigError(problems)
    return expansion.runs()


def _refuse_runaway(spec: SweepSpec, grids: list[MethodGrid], file: str, problems: list[Problem]) -> None:
    """Raise ConfigError when the grids yield more than `max_runs` runs: counted, not expanded, so a
    runaway grid is refused at once."""
    count = sum(_run_count(spec, g) for g in grids)
    if count <= spec.max_runs:
        return
    sizes = ", ".join(f"methods.{g.label}: {_run_count(spec, g)}" for g in grids)
    message = (
        f"The sweep expands to {count} runs ({sizes}), over the cap of {spec.max_runs}: check the grids, "
        f"or raise the cap with `max_runs: {count}` in the sweep file."
    )
    raise ConfigError([*problems, Problem(file, "max_runs", message)])


def _run_count(spec: SweepSpec, grid: MethodGrid) -> int:
    """How many runs a method block yields (before refusals), from the axis lengths alone."""
    tasks = len(grid.tasks) if grid.tasks is not None else len(spec.tasks)
    models = len(grid.models) if grid.models is not None else len(spec.models)
    axes = [*grid.param_axes.values(), *grid.training_axes.values()]
    return models * tasks * len(spec.seeds) * math.prod(len(axis) for axis in axes)


@dataclass
class _Expansion:
    """One expansion under way: the runs made so far, their ids, and every problem found."""

    spec: SweepSpec
    file: str
    grids: dict[str, MethodGrid]
    depth: dict[str, int]
    problems: list[Problem]
    ordered: list[tuple[tuple[int, ...], RunSpec]] = field(default_factory=list)
    produced: dict[tuple[str, str, int, int], list[RunSpec]] = field(default_factory=dict)
    seen: dict[str, str] = field(default_factory=dict)  # run id -> where in the file it came from

    def runs(self) -> list[RunSpec]:
        """Parents before children, then by model, task, method block, grid point and seed."""
        return [run for _, run in sorted(self.ordered, key=lambda kr: kr[0])]

    def add_grid(
        self,
        grid_i: int,
        grid: MethodGrid,
        models: list[ModelRef | None],
        tasks: list[TaskSpec | None],
        points: list[GridPoint],
    ) -> None:
        """Every run of `grid` on the models and tasks it applies to, keyed for the order of `runs`."""
        model_names = self.spec.model_names
        for (model_i, model), (task_i, task) in itertools.product(enumerate(models), enumerate(tasks)):
            if model is None or task is None or not _applies(grid, model_names[model_i], task.name):
                continue
            searched, winners = split_seeds(grid.search, self.spec.seeds)
            for (point_i, point), (seed_i, seed) in itertools.product(enumerate(points), enumerate(searched)):
                self._add(
                    (self.depth[grid.label], model_i, task_i, grid_i, point_i, seed_i),
                    self._run(grid, point, model, model_i, task, seed, grid.search),
                )
            for seed_i, seed in enumerate(winners if points else [], start=len(searched)):
                assert grid.search is not None  # seeds train a winner only under a search
                winner = self._run(grid, points[0], model, model_i, task, seed, winner_search(grid.search))
                self._add((self.depth[grid.label], model_i, task_i, grid_i, len(points), seed_i), winner)

    def _add(self, key: tuple[int, ...], run: RunSpec | None) -> None:
        if run is not None:
            self.ordered.append((key, run))

    def _run(
        self,
        grid: MethodGrid,
        point: GridPoint,
        model: ModelRef,
        model_i: int,
        task: TaskSpec,
        seed: int,
        search: SearchSettings | None = None,
    ) -> RunSpec | None:
        """One run of the grid, or None after adding why not (refused, no parent, a duplicate)."""
        key = f"methods.{grid.label}"
        params = METHODS[grid.method].Params.model_validate(point.params)
        message = refusal(grid.method, params, model, task, point.resources)
        if message is not None:
            self.problems.append(Problem(self.file, key, message))
            return None
        start = model if grid.parent is None else self._parent_model(grid, model, model_i, seed)
        if start is None:
            return None
        run = RunSpec(
            sweep=self.spec.name,
            model=start,
            task=task,
            method=grid.method,
            label=grid.label,
            params=point.params,
            training=point.training,
            seed=seed,
            resources=point.resources,
            search=search,
            tracking=self.spec.tracking,
        )
        where, run_id = f"{point.where} seed {seed}", run.run_id  # a hash: made once
        if run_id in self.seen:
            message = f"Duplicate run {run_id}: {where} repeats {self.seen[run_id]}."
            self.problems.append(Problem(self.file, key, message))
            return None
        self.seen[run_id] = where
        self.produced.setdefault((grid.label, task.name, model_i, seed), []).append(run)
        return run

    def _parent_model(self, grid: MethodGrid, model: ModelRef, model_i: int, seed: int) -> ModelRef | None:
        """`model` as the parent run left it (source `run:<parent id>`), or None after adding a problem."""
        assert grid.parent is not None
        parent = self.grids.get(grid.parent.label)
        if parent is None:  # the parent block itself is invalid; its own problems are reported
            return None
        task = grid.parent.task
        runs = self.produced.get((parent.label, task, model_i, seed), [])
        message = _parent_refusal(parent, task, runs, model, seed)
        if message is not None:
            self.problems.append(Problem(self.file, f"methods.{grid.label}.parent", message))
            return None
        if parent.search is not None:  # the cell's winner, found when the child starts
            return model.model_copy(
                update={"source": winner_source(self._searched(parent, task, model_i), task, parent.label)}
            )
        return model.model_copy(update={"source": f"{RUN_SOURCE}{runs[0].run_id}"})

    def _searched(self, parent: MethodGrid, task: str, model_i: int) -> str:
        """A digest of the runs that search the parent cell's grid: a child's run id follows the grid
        its parent searched and the search settings, never the point that wins."""
        searched, _ = split_seeds(parent.search, self.spec.seeds)
        ids = sorted(
            r.run_id for s in searched for r in self.produced.get((parent.label, task, model_i, s), [])
        )
        return hashlib.sha256(json.dumps(ids).encode()).hexdigest()[:12]


def _applies(grid: MethodGrid, model_name: str, task_name: str) -> bool:
    """Whether the block's `models:` and `tasks:` (None: all of them) include this model and task."""
    return (grid.tasks is None or task_name in grid.tasks) and (
        grid.models is None or model_name in grid.models
    )


def _parent_refusal(
    parent: MethodGrid, task: str, runs: list[RunSpec], model: ModelRef, seed: int
) -> str | None:
    """Why the runs block `parent` made on `task` for (model, seed) cannot be started from, or None."""
    if not METHODS[parent.method].mergeable:
        return (
            f"A {parent.method!r} parent trains virtual tokens, not weights: there is no model to start from."
        )
    if len(runs) == 1 or (runs and parent.search is not None):  # a searched cell: its winner (core/search.py)
        return None
    found = "none" if not runs else f"{len(runs)} (give its grid keys single values)"
    if not runs and parent.tasks is not None and task not in parent.tasks:
        found += f" (its tasks {list(parent.tasks)} leave out {task!r})"
    return (
        f"The parent methods.{parent.label} must yield exactly one run per model and seed on task "
        f"{task!r}; for model {model.name!r} seed {seed} it yields {found}."
    )


def _depths(grids: dict[str, MethodGrid], file: str, problems: list[Problem]) -> dict[str, int]:
    """How many parents each block has above it; blocks in a parent cycle are left out (a problem)."""
    depth: dict[str, int] = {}
    for label in grids:
        chain = [label]
        while (parent := grids[chain[-1]].parent) is not None and parent.label in grids:
            if parent.label in chain:
                cycle = " -> ".join([*chain[chain.index(parent.label) :], parent.label])
                problems.append(Problem(file, f"methods.{label}.parent", f"Parents form a cycle: {cycle}."))
                break
            chain.append(parent.label)
        else:
            depth[label] = len(chain) - 1
    return depth
