"""A sweep file becomes a list of RunSpecs: validation of everything, then grid expansion.

`load_sweep` checks the whole file (keys, types, names of models/tasks/methods, each method's
grid values, model family against method, local data files) and raises one ConfigError listing
every problem. `expand_sweep` is a pure function of a valid SweepSpec.
"""

from __future__ import annotations

import itertools
import math
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from peftbench.core.errors import ConfigError, Problem, format_key, unknown_name
from peftbench.core.spec import RUN_SOURCE, ModelRef, ResourceRequest, RunSpec, TaskSpec, TrainingSettings
from peftbench.methods import METHODS, MethodParams
from peftbench.models.catalog import MODEL_CATALOG
from peftbench.models.families import FAMILY_TRAITS
from peftbench.plan.problems import check_keys, pydantic_problems
from peftbench.plan.schema import SweepSpec
from peftbench.tasks import TASK_CATALOG, TASK_TYPES
from peftbench.tasks.sources import missing_files

SPECIAL_METHOD_KEYS = ("method", "resources", "tasks", "models", "parent")


PARENT_KEYS = ("method", "task")


@dataclass(frozen=True)
class ParentRef:
    """Incremental tuning: a block's runs start from the model that block `label` produced on `task`."""

    label: str
    task: str


@dataclass(frozen=True)
class MethodGrid:
    """One method block of a sweep, split into its parts. Each axis maps a key to its values."""

    label: str
    method: str
    param_axes: dict[str, list[Any]]
    training_axes: dict[str, list[Any]]
    resources: dict[str, Any]
    tasks: tuple[str, ...] | None = None  # run only on these tasks (None: on every task)
    parent: ParentRef | None = None
    models: tuple[str, ...] | None = None  # run only on these models (None: on every model)

    def points(self) -> list[tuple[dict[str, Any], dict[str, Any]]]:
        """Every (method params, training overrides) combination, in file order."""
        axes = {
            **{("p", k): v for k, v in self.param_axes.items()},
            **{("t", k): v for k, v in self.training_axes.items()},
        }
        out = []
        for combo in itertools.product(*axes.values()):
            chosen = dict(zip(axes, combo, strict=True))
            out.append(
                (
                    {k: v for (kind, k), v in chosen.items() if kind == "p"},
                    {k: v for (kind, k), v in chosen.items() if kind == "t"},
                )
            )
        return out


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
    models = [_resolve_model(m, i, file, problems) for i, m in enumerate(spec.models)]
    tasks = [_resolve_task(t, i, file, problems) for i, t in enumerate(spec.tasks)]
    task_names = [t if isinstance(t, str) else t.name for t in spec.tasks]
    tasks = _with_task_settings(spec, tasks, task_names, file, problems)
    model_names = [m if isinstance(m, str) else m.name for m in spec.models]
    grids = [
        grid
        for label, block in spec.methods.items()
        if (grid := _method_grid(label, block, file, problems, task_names, list(spec.methods), model_names))
        is not None
    ]
    count = sum(_run_count(spec, g) for g in grids)
    if count > spec.max_runs:  # counted, not expanded: a runaway grid is refused at once
        sizes = ", ".join(f"methods.{g.label}: {_run_count(spec, g)}" for g in grids)
        message = (
            f"The sweep expands to {count} runs ({sizes}), over the cap of {spec.max_runs}: check the grids, "
            f"or raise the cap with `max_runs: {count}` in the sweep file."
        )
        raise ConfigError([*problems, Problem(file, "max_runs", message)])
    points = {g.label: _validated_points(spec, g, file, problems) for g in grids}
    by_label = {g.label: g for g in grids}
    depth = _depths(by_label, file, problems)
    expansion = _Expansion(spec, file, by_label, depth, problems)
    for grid_i, grid in sorted(enumerate(grids), key=lambda g: depth.get(g[1].label, 0)):
        if grid.label in depth:
            expansion.add_grid(grid_i, grid, models, tasks, points[grid.label])
    if problems:
        raise ConfigError(problems)
    return expansion.runs()


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
        for (model_i, model), (task_i, task) in itertools.product(enumerate(models), enumerate(tasks)):
            if model is None or task is None or (grid.tasks is not None and task.name not in grid.tasks):
                continue
            if grid.models is not None and self.spec_model_name(model_i) not in grid.models:
                continue
            seeds = enumerate(self.spec.seeds)
            for (point_i, point), (seed_i, seed) in itertools.product(enumerate(points), seeds):
                run = self._run(grid, point, model, model_i, task, seed)
                if run is not None:
                    key = (self.depth[grid.label], model_i, task_i, grid_i, point_i, seed_i)
                    self.ordered.append((key, run))

    def spec_model_name(self, model_i: int) -> str:
        """The name the sweep file gives its model_i-th model (what a block's `models:` lists)."""
        entry = self.spec.models[model_i]
        return entry if isinstance(entry, str) else entry.name

    def _run(
        self, grid: MethodGrid, point: GridPoint, model: ModelRef, model_i: int, task: TaskSpec, seed: int
    ) -> RunSpec | None:
        """One run of the grid, or None after adding why not (refused, no parent, a duplicate)."""
        key = f"methods.{grid.label}"
        params = METHODS[grid.method].Params.model_validate(point.params)
        message = refusal(grid.method, params, model, task, point.resources)
        if message is not None:
            self.problems.append(Problem(self.file, key, message))
            return None
        start: ModelRef | None = model
        if grid.parent is not None:
            start = _parent_model(
                grid, self.grids, self.produced, model, model_i, seed, self.file, self.problems
            )
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
        )
        where, run_id = f"{point.where} seed {seed}", run.run_id  # a hash: made once
        if run_id in self.seen:
            message = f"Duplicate run {run_id}: {where} repeats {self.seen[run_id]}."
            self.problems.append(Problem(self.file, key, message))
            return None
        self.seen[run_id] = where
        self.produced.setdefault((grid.label, task.name, model_i, seed), []).append(run)
        return run


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


def _parent_model(
    grid: MethodGrid,
    grids: dict[str, MethodGrid],
    produced: dict[tuple[str, str, int, int], list[RunSpec]],
    model: ModelRef,
    model_i: int,
    seed: int,
    file: str,
    problems: list[Problem],
) -> ModelRef | None:
    """`model` as the parent run left it (source `run:<parent id>`), or None after adding a problem."""
    assert grid.parent is not None
    key = f"methods.{grid.label}.parent"
    parent = grids.get(grid.parent.label)
    if parent is None:  # the parent block itself is invalid; its own problems are reported
        return None
    if not METHODS[parent.method].mergeable:
        message = (
            f"A {parent.method!r} parent trains virtual tokens, not weights: there is no model to start from."
        )
        problems.append(Problem(file, key, message))
        return None
    runs = produced.get((parent.label, grid.parent.task, model_i, seed), [])
    if len(runs) != 1:
        found = "none" if not runs else f"{len(runs)} (give its grid keys single values)"
        if not runs and parent.tasks is not None and grid.parent.task not in parent.tasks:
            found += f" (its tasks {list(parent.tasks)} leave out {grid.parent.task!r})"
        message = (
            f"The parent methods.{parent.label} must yield exactly one run per model and seed on task "
            f"{grid.parent.task!r}; for model {model.name!r} seed {seed} it yields {found}."
        )
        problems.append(Problem(file, key, message))
        return None
    return model.model_copy(update={"source": f"{RUN_SOURCE}{runs[0].run_id}"})


def _resolve_model(entry: str | ModelRef, i: int, file: str, problems: list[Problem]) -> ModelRef | None:
    key = format_key(("models", i))
    if isinstance(entry, str):
        if entry not in MODEL_CATALOG:
            problems.append(unknown_name(file, key, "model", entry, MODEL_CATALOG))
            return None
        return MODEL_CATALOG[entry]
    if entry.family not in FAMILY_TRAITS:
        problems.append(unknown_name(file, f"{key}.family", "model family", entry.family, FAMILY_TRAITS))
        return None
    if entry.source.startswith(("/", "./", "../", "~")) and not Path(entry.source).expanduser().exists():
        problems.append(Problem(file, f"{key}.source", f"No model folder at {entry.source!r}."))
        return None
    return entry


def _resolve_task(entry: str | TaskSpec, i: int, file: str, problems: list[Problem]) -> TaskSpec | None:
    key = format_key(("tasks", i))
    if isinstance(entry, str):
        if entry not in TASK_CATALOG:
            problems.append(unknown_name(file, key, "task", entry, TASK_CATALOG))
            return None
        return TASK_CATALOG[entry]
    if entry.type not in TASK_TYPES:
        problems.append(unknown_name(file, f"{key}.type", "task type", entry.type, TASK_TYPES))
        return None
    found = TASK_TYPES[entry.type].problems(entry)
    found += [("source", f"No such data file or folder: {f!r}.", f, ()) for f in missing_files(entry.source)]
    if entry.test_source is not None:
        found += [
            ("test_source", f"No such data file or folder: {f!r}.", f, ())
            for f in missing_files(entry.test_source)
        ]
    for sub, message, value, allowed in found:
        problems.append(Problem(file, f"{key}.{sub}", message, value, tuple(allowed)))
    return None if found else entry


def _with_task_settings(
    spec: SweepSpec, tasks: list[TaskSpec | None], names: list[str], file: str, problems: list[Problem]
) -> list[TaskSpec | None]:
    """The tasks with the sweep's `task_settings` put in, each changed task checked again by its type."""
    tasks = list(tasks)
    for name, settings in spec.task_settings.items():
        key = f"task_settings.{name}"
        if name not in names:
            problems.append(unknown_name(file, key, "task", name, names))
            continue
        i = names.index(name)
        if tasks[i] is None:  # the task itself is invalid; its own problems are reported
            continue
        changed = tasks[i].model_copy(update=settings.model_dump(exclude_unset=True))
        found = TASK_TYPES[changed.type].problems(changed)
        for sub, message, value, allowed in found:
            problems.append(Problem(file, f"{key}.{sub}", message, value, tuple(allowed)))
        tasks[i] = None if found else changed
    return tasks


def _method_grid(
    label: str,
    block: dict[str, Any] | None,
    file: str,
    problems: list[Problem],
    task_names: list[str],
    labels: list[str],
    model_names: list[str] | None = None,
) -> MethodGrid | None:
    block = dict(block or {})
    key = f"methods.{label}"
    name_key = f"{key}.method" if "method" in block else key
    name = block.pop("method", label)
    if name not in METHODS:
        problems.append(unknown_name(file, name_key, "method", name, METHODS))
        return None
    resources = block.pop("resources", {}) or {}
    resource_problems = check_keys(file, resources, ResourceRequest, ("methods", label, "resources"))
    problems.extend(resource_problems)
    before = len(problems)
    tasks = _block_tasks(block.pop("tasks", None), f"{key}.tasks", file, problems, task_names)
    models = _block_names(
        block.pop("models", None), f"{key}.models", file, problems, model_names or [], "model"
    )
    parent = _parent_ref(block.pop("parent", None), label, file, problems, task_names, labels)
    own_problems = len(problems) > before
    params_model = METHODS[name].Params
    param_axes, training_axes, bad = {}, {}, False
    for k, value in block.items():
        owner = (
            params_model
            if k in params_model.model_fields
            else (TrainingSettings if k in TrainingSettings.model_fields else None)
        )
        if owner is None:
            allowed = (
                *params_model.model_fields,
                *TrainingSettings.model_fields,
                *SPECIAL_METHOD_KEYS,
            )
            problems.append(
                Problem(file, f"{key}.{k}", f"Unknown key {k!r} for method {name!r}.", k, allowed)
            )
            bad = True
            continue
        axis = _as_axis(owner, k, value)
        if not axis:
            problems.append(Problem(file, f"{key}.{k}", "Empty grid: give at least one value."))
            bad = True
            continue
        (param_axes if owner is params_model else training_axes)[k] = axis
    if bad or resource_problems or own_problems:
        return None
    return MethodGrid(label, name, param_axes, training_axes, resources, tasks, parent, models)


def _block_tasks(
    value: Any, key: str, file: str, problems: list[Problem], task_names: list[str]
) -> tuple[str, ...] | None:
    """The `tasks:` of a method block: names of the sweep's tasks (one name or a list)."""
    return _block_names(value, key, file, problems, task_names, "task")


def _block_names(
    value: Any, key: str, file: str, problems: list[Problem], known: list[str], what: str
) -> tuple[str, ...] | None:
    """A method block's `tasks:` or `models:`: names of the sweep's tasks or models (one or a list)."""
    if value is None:
        return None
    names = [value] if isinstance(value, str) else value
    if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
        problems.append(
            Problem(file, key, f"Give a list of {what} names (got {value!r}).", None, tuple(known))
        )
        return None
    unknown = [n for n in names if n not in known]
    for n in unknown:
        message = f"{what.capitalize()} {n!r} is not one of the sweep's {what}s."
        problems.append(Problem(file, key, message, n, tuple(known)))
    return None if unknown else tuple(names)


def _parent_ref(
    value: Any, label: str, file: str, problems: list[Problem], task_names: list[str], labels: list[str]
) -> ParentRef | None:
    """The `parent: {method: <label>, task: <task name>}` of a method block."""
    if value is None:
        return None
    key = f"methods.{label}.parent"
    if not isinstance(value, dict) or set(value) != set(PARENT_KEYS):
        message = f"Give parent as {{method: <a method label>, task: <a task name>}} (got {value!r})."
        problems.append(Problem(file, key, message, None, PARENT_KEYS))
        return None
    others = [other for other in labels if other != label]
    found = len(problems)
    if value["method"] not in others:
        problems.append(unknown_name(file, f"{key}.method", "method label", value["method"], others))
    if value["task"] not in task_names:
        problems.append(unknown_name(file, f"{key}.task", "task", value["task"], task_names))
    return None if len(problems) > found else ParentRef(value["method"], value["task"])


def _as_axis(model: type[BaseModel], key: str, value: Any) -> list[Any]:
    """A list is a grid axis, except for a list-typed field, whose grid is a list of lists."""
    if not isinstance(value, list):
        return [value]
    if _accepts_list(model.model_fields[key].annotation) and not any(isinstance(v, list) for v in value):
        return [value] if value else []
    return value


def _accepts_list(annotation: Any) -> bool:
    if typing.get_origin(annotation) is list:
        return True
    return any(_accepts_list(a) for a in typing.get_args(annotation))


@dataclass(frozen=True)
class GridPoint:
    """One validated point of a method grid: params and settings with every default filled in."""

    label: str
    params: dict[str, Any]
    training: TrainingSettings
    resources: ResourceRequest
    where: str  # how the user would find it in the file


def _validated_points(
    spec: SweepSpec, grid: MethodGrid, file: str, problems: list[Problem]
) -> list[GridPoint]:
    out = []
    for params, overrides in grid.points():
        try:
            method_params = METHODS[grid.method].Params.model_validate(params)
            training = TrainingSettings.model_validate(spec.training.model_dump() | overrides)
        except ValidationError as err:
            problems.extend(pydantic_problems(file, err, ("methods", grid.label)))
            continue
        try:
            resources = ResourceRequest.model_validate(spec.resources.model_dump() | grid.resources)
        except ValidationError as err:
            problems.extend(pydantic_problems(file, err, ("methods", grid.label, "resources")))
            continue
        where = f"methods.{grid.label} {params | overrides}"
        out.append(GridPoint(grid.label, method_params.model_dump(mode="json"), training, resources, where))
    return out
