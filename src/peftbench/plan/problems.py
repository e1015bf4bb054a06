"""pydantic validation errors and unknown keys as Problems naming the file, the key and what is allowed."""

from __future__ import annotations

import typing
from typing import Any

from pydantic import BaseModel, ValidationError

from peftbench.core.errors import Problem, format_key


def pydantic_problems(file: str, err: ValidationError, prefix: tuple = ()) -> list[Problem]:
    """pydantic's errors as Problems. Unknown keys are left to `check_keys`, which knows the allowed ones."""
    problems = []
    for e in err.errors():
        if e["type"] == "extra_forbidden":
            continue
        loc = prefix + tuple(p for p in e["loc"] if not _is_union_tag(p))
        message = e["msg"].removeprefix("Value error, ")
        problems.append(Problem(file, format_key(loc), f"{message} (got {e.get('input')!r})."))
    return problems


def _is_union_tag(part: object) -> bool:
    """pydantic adds the union member's name (`str`, `ModelRef`) to locations; users never wrote it."""
    return isinstance(part, str) and (part in {"str", "int", "float"} or part[:1].isupper())


def check_keys(file: str, data: Any, model: type[BaseModel], loc: tuple = ()) -> list[Problem]:
    """Unknown keys of `data` for `model` (recursing into sub-models), with allowed keys and near match."""
    return split_unknown_keys(file, data, model, loc)[1]


def split_unknown_keys(
    file: str, data: Any, model: type[BaseModel], loc: tuple = ()
) -> tuple[Any, list[Problem]]:
    """(`data` without its unknown keys, a Problem per unknown key), recursing into sub-models."""
    if not isinstance(data, dict):
        return data, []
    problems, known = [], {}
    allowed = tuple(model.model_fields)
    for key, value in data.items():
        if key not in model.model_fields:
            problems.append(Problem(file, format_key((*loc, key)), f"Unknown key {key!r}.", key, allowed))
            continue
        known[key], found = _split_field(file, value, model.model_fields[key].annotation, (*loc, key))
        problems += found
    return known, problems


def _split_field(file: str, value: Any, annotation: Any, loc: tuple) -> tuple[Any, list[Problem]]:
    """A field's value without the unknown keys of the model it holds, directly or as a dict's values."""
    sub = _sub_model(annotation)
    if sub is not None:
        return split_unknown_keys(file, value, sub, loc)
    entries = _entry_model(annotation)
    if entries is None or not isinstance(value, dict):
        return value, []
    split = {k: split_unknown_keys(file, v, entries, (*loc, k)) for k, v in value.items()}
    kept = {k: entry for k, (entry, _found) in split.items()}
    return kept, [p for _entry, found in split.values() for p in found]


def _entry_model(annotation: Any) -> type[BaseModel] | None:
    """The BaseModel of a `dict[str, Model]` field's values (gpu_types, task_settings), if any."""
    if typing.get_origin(annotation) is not dict:
        return None
    value = typing.get_args(annotation)[-1]
    return value if isinstance(value, type) and issubclass(value, BaseModel) else None


def _sub_model(annotation: Any) -> type[BaseModel] | None:
    """The BaseModel a field holds directly (not inside a list or dict), if any."""
    if typing.get_origin(annotation) in (dict, list):
        return None
    candidates = typing.get_args(annotation) or (annotation,)
    for c in candidates:
        if isinstance(c, type) and issubclass(c, BaseModel):
            return c
    return None
