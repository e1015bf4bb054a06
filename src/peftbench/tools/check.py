"""One finding of `peftbench doctor`, and the installed version of a package (what most checks compare)."""

from __future__ import annotations

from dataclasses import dataclass
from importlib import metadata
from typing import Literal

Status = Literal["ok", "info", "fail"]  # info: a fact that is not a problem here


@dataclass(frozen=True)
class Check:
    """A named finding: its status and what was found (with the fix, for a failure)."""

    name: str
    status: Status
    detail: str

    def __str__(self) -> str:
        return f"{self.name}: {self.detail}"


def installed_version(name: str) -> str | None:
    """The version of the installed distribution `name`, or None when it is not installed."""
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None
