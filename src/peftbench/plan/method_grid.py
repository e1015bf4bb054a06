"""One method block of a sweep file as a grid: its axes, its `tasks:`, `models:` and `parent:`.

`method_grid` checks a block's keys against the method's Params and TrainingSettings and splits
it into axes; `validated_points` turns the axes into points with every default filled in. Every
problem is added to the caller's list, so one ConfigError can name all of them.
"""

from __future__ import annotations

import itertools
import typing
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError

from peftbench.core.errors import Problem, unknown_name
from peftbench.core.search_settings import SearchSettings
from peftbench.core.spec import ResourceRequest, TrainingSettings
from peftbench.methods import METHODS
from peftbench.plan.problems import check_keys, pydantic_problems
from peftbench.plan.schema import SweepSpec
from peftbench.plan.search_plan import block_search

SPECIAL_METHOD_KEYS = ("method", "resources", "tasks", "models", "parent", "search")


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
    search: SearchSettings | None = None  # successive halving of the block's grid (None: the full grid)
    own_search: bool = False  # the block wrote `search:` itself (else it is the sweep's)

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


@dataclass(frozen=True)
class GridPoint:
    """One validated point of a method grid: params and settings with every default filled in."""

    label: str
    params: dict[str, Any]
    training: TrainingSettings
    resources: ResourceRequest
    where: str  # how the user would find it in the file


@dataclass(frozen=True)
class _BlockContext:
    """Where a method block sits: its file, its label, and the names its keys may refer to."""

    file: str
    label: str
    task_names: list[str]
    labels: list[str]
    model_names: list[str]

    @property
    def key(self) -> str:
        return f"methods.{self.label}"


def method_grid(spec: SweepSpec, label: str, file: str, problems: list[Problem]) -> MethodGrid | None:
    """The block `methods.<label>` as a grid, or None after adding every problem it has."""
    block = dict(spec.methods[label] or {})
    where = _BlockContext(file, label, spec.task_names, list(spec.methods), spec.model_names)
    name_key = f"{where.key}.method" if "method" in block else where.key
    name = block.pop("method", label)
    if name not in METHODS:
        problems.append(unknown_name(file, name_key, "method", name, METHODS))
        return None
    resources = block.pop("resources", {}) or {}
    before = len(problems)
    problems.extend(check_keys(file, resources, ResourceRequest, ("methods", label, "resources")))
    tasks = _block_names(block.pop("tasks", None), "tasks", where.task_names, where, problems)
    models = _block_names(block.pop("models", None), "models", where.model_names, where, problems)
    parent = _parent_ref(block.pop("parent", None), where, problems)
    own_search = "search" in block  # `search: null` keeps the full grid under a sweep-wide search
    search = block_search(block.pop("search", None), own_search, spec.search, (file, label), problems)
    param_axes, training_axes = _axes(name, block, where, problems)
    if len(problems) > before:
        return None
    return MethodGrid(
        label, name, param_axes, training_axes, resources, tasks, parent, models, search, own_search
    )


def _axes(
    name: str, block: dict[str, Any], where: _BlockContext, problems: list[Problem]
) -> tuple[dict[str, list[Any]], dict[str, list[Any]]]:
    """(method param axes, training axes) of a block's grid keys; a problem per unknown or empty key."""
    params_model = METHODS[name].Params
    axes: dict[type[BaseModel], dict[str, list[Any]]] = {params_model: {}, TrainingSettings: {}}
    for k, value in block.items():
        owner = next((model for model in axes if k in model.model_fields), None)
        if owner is None:
            allowed = (*params_model.model_fields, *TrainingSettings.model_fields, *SPECIAL_METHOD_KEYS)
            message = f"Unknown key {k!r} for method {name!r}."
            problems.append(Problem(where.file, f"{where.key}.{k}", message, k, allowed))
            continue
        axis = _as_axis(owner, k, value)
        if not axis:
            problems.append(Problem(where.file, f"{where.key}.{k}", "Empty grid: give at least one value."))
            continue
        axes[owner][k] = axis
    return axes[params_model], axes[TrainingSettings]


def _block_names(
    value: Any, field: str, known: list[str], where: _BlockContext, problems: list[Problem]
) -> tuple[str, ...] | None:
    """A method block's `tasks:` or `models:` (`field`): names of the sweep's tasks or models."""
    if value is None:
        return None
    key, what = f"{where.key}.{field}", field.removesuffix("s")
    names = [value] if isinstance(value, str) else value
    if not _is_name_list(names):
        message = f"Give a list of {what} names (got {value!r})."
        problems.append(Problem(where.file, key, message, None, tuple(known)))
        return None
    unknown = [n for n in names if n not in known]
    for n in unknown:
        message = f"{what.capitalize()} {n!r} is not one of the sweep's {field}."
        problems.append(Problem(where.file, key, message, n, tuple(known)))
    return None if unknown else tuple(names)


def _is_name_list(names: Any) -> bool:
    """A non-empty list of strings."""
    return isinstance(names, list) and bool(names) and all(isinstance(n, str) for n in names)


def _parent_ref(value: Any, where: _BlockContext, problems: list[Problem]) -> ParentRef | None:
    """The `parent: {method: <label>, task: <task name>}` of a method block."""
    if value is None:
        return None
    key = f"{where.key}.parent"
    if not isinstance(value, dict) or set(value) != set(PARENT_KEYS):
        message = f"Give parent as {{method: <a method label>, task: <a task name>}} (got {value!r})."
        problems.append(Problem(where.file, key, message, None, PARENT_KEYS))
        return None
    others = [other for other in where.labels if other != where.label]
    found = len(problems)
    if value["method"] not in others:
        problems.append(unknown_name(where.file, f"{key}.method", "method label", value["method"], others))
    if value["task"] not in where.task_names:
        problems.append(unknown_name(where.file, f"{key}.task", "task", value["task"], where.task_names))
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


def validated_points(
    spec: SweepSpec, grid: MethodGrid, file: str, problems: list[Problem]
) -> list[GridPoint]:
    """The grid's points with the sweep's training and resources filled in; a problem per bad point."""
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
