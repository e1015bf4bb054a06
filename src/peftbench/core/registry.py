"""The one rule for registries of named classes (methods, task types): a well-formed name, once.

A registry maps each name to the one instance of its class, as peft's `register_peft_method` does;
a duplicate or badly formed name is a bug in the code, found when the module is imported.
"""

from __future__ import annotations

import re
from typing import TypeVar

T = TypeVar("T")
NAME = re.compile(r"^[a-z][a-z0-9_]*$")


def register_class(registry: dict[str, T], kind: str, cls: type[T]) -> type[T]:
    """Add an instance of `cls` to `registry` under `cls.name`; `kind` names what it is in errors."""
    name = getattr(cls, "name", None)
    if not isinstance(name, str) or not NAME.match(name):
        raise ValueError(f"{kind} name {name!r} of {cls.__name__} must match {NAME.pattern}.")
    if name in registry:
        raise ValueError(f"{kind} {name!r} is registered twice ({cls.__name__}).")
    registry[name] = cls()
    return cls
