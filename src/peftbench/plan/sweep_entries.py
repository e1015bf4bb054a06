"""The models and tasks a sweep file names, resolved against the catalogs and checked.

A catalog name becomes its ModelRef or TaskSpec; an inline entry is checked (family, task type,
local files); `task_settings` are put into their tasks. An entry with a problem becomes None
(its problems added to the caller's list), so the rest of the sweep is still checked.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from peftbench.core.errors import Problem, format_key, unknown_name
from peftbench.core.spec import ModelRef, TaskSpec
from peftbench.models.catalog import MODEL_CATALOG
from peftbench.models.families import FAMILY_TRAITS
from peftbench.plan.schema import SweepSpec
from peftbench.tasks import TASK_CATALOG, TASK_TYPES
from peftbench.tasks.sources import missing_files

# A task type's problems and missing files alike: (sub-key, message, value, allowed values).
TaskProblem = tuple[str, str, Any, tuple[str, ...]]


def resolve_entries(
    spec: SweepSpec, file: str, problems: list[Problem]
) -> tuple[list[ModelRef | None], list[TaskSpec | None]]:
    """(models, tasks) of the sweep in file order, None for each entry with a problem."""
    models = [_resolve_model(m, i, file, problems) for i, m in enumerate(spec.models)]
    tasks = [_resolve_task(t, i, file, problems) for i, t in enumerate(spec.tasks)]
    return models, _with_task_settings(spec, tasks, file, problems)


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
    if _is_missing_folder(entry.source):
        problems.append(Problem(file, f"{key}.source", f"No model folder at {entry.source!r}."))
        return None
    return entry


def _is_missing_folder(source: str) -> bool:
    """A source written as a local path that does not exist (a hub id is never missing here)."""
    return source.startswith(("/", "./", "../", "~")) and not Path(source).expanduser().exists()


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
    found = [*TASK_TYPES[entry.type].problems(entry), *_missing_data(entry)]
    _add_task_problems(found, key, file, problems)
    return None if found else entry


def _missing_data(task: TaskSpec) -> list[TaskProblem]:
    """A problem per data file of `source` and `test_source` that is not there."""
    sources = {"source": task.source, "test_source": task.test_source}
    return [
        (sub, f"No such data file or folder: {f!r}.", f, ())
        for sub, source in sources.items()
        if source is not None
        for f in missing_files(source)
    ]


def _add_task_problems(found: list[TaskProblem], key: str, file: str, problems: list[Problem]) -> None:
    for sub, message, value, allowed in found:
        problems.append(Problem(file, f"{key}.{sub}", message, value, tuple(allowed)))


def _with_task_settings(
    spec: SweepSpec, tasks: list[TaskSpec | None], file: str, problems: list[Problem]
) -> list[TaskSpec | None]:
    """The tasks with the sweep's `task_settings` put in, each changed task checked again by its type."""
    tasks, names = list(tasks), spec.task_names
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
        _add_task_problems(found, key, file, problems)
        tasks[i] = None if found else changed
    return tasks
