"""Where cluster profiles are found, from any folder and from any kind of install.

The shipped profiles (`local`, `dev`, `arnes`, `vega`, `komondor`) are package data, so a wheel,
the shared `.sif` and an editable checkout all have them. A lab's own profiles win over them, in
this order (the first folder holding `<name>.yaml` gives the profile):

1. `--profiles DIR`, or the folders of `$PEFTBENCH_CLUSTERS` (separated like PATH);
2. `./configs/clusters` of the current folder (a lab's project, or this checkout);
3. the user's config folder, `$XDG_CONFIG_HOME/peftbench/clusters` (default `~/.config/...`);
4. the packaged profiles.

A name with a `.yaml`/`.yml` suffix is a path and is read as it is.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

PACKAGED = Path(__file__).resolve().parent / "clusters"
ENV_VAR = "PEFTBENCH_CLUSTERS"


@dataclass(frozen=True)
class ProfileFolder:
    """A folder that may hold profiles, and how the user would recognise it."""

    path: Path
    origin: str  # "--profiles", "$PEFTBENCH_CLUSTERS", "project", "user", "packaged"


@dataclass(frozen=True)
class FoundProfile:
    name: str
    path: Path
    origin: str
    shadows: tuple[str, ...] = ()  # origins of same-named profiles this one hides


def user_folder() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "peftbench" / "clusters"


def profile_folders(profiles: Path | None = None) -> list[ProfileFolder]:
    """The folders searched for a profile name, first match wins."""
    folders = []
    if profiles is not None:
        folders.append(ProfileFolder(Path(profiles), "--profiles"))
    for entry in filter(None, os.environ.get(ENV_VAR, "").split(os.pathsep)):
        folders.append(ProfileFolder(Path(entry), f"${ENV_VAR}"))
    folders += [
        ProfileFolder(Path("configs") / "clusters", "project"),
        ProfileFolder(user_folder(), "user"),
        ProfileFolder(PACKAGED, "packaged"),
    ]
    return folders


def find_profile(name: str, profiles: Path | None = None) -> Path | None:
    """The file of profile `name`, or None when no folder has one."""
    for folder in profile_folders(profiles):
        path = folder.path / f"{name}.yaml"
        if path.is_file():
            return path
    return None


def list_profiles(profiles: Path | None = None) -> list[FoundProfile]:
    """Every profile name found, with the file that wins and the origins it hides, by name."""
    found: dict[str, list[tuple[Path, str]]] = {}
    for folder in profile_folders(profiles):
        if folder.path.is_dir():
            for path in sorted(folder.path.glob("*.yaml")):
                found.setdefault(path.stem, []).append((path, folder.origin))
    return [
        FoundProfile(name, hits[0][0], hits[0][1], tuple(origin for _, origin in hits[1:]))
        for name, hits in sorted(found.items())
    ]


def searched(profiles: Path | None = None) -> str:
    """The searched folders, for a message: `--profiles x, configs/clusters (project), ...`."""
    return ", ".join(f"{f.path} ({f.origin})" for f in profile_folders(profiles))


def copy_profile(name: str, profiles: Path | None = None, to: Path = Path("configs") / "clusters") -> Path:
    """Copy the profile `name` now found into `to` (default ./configs/clusters), to fill in and keep.

    Never overwrites: an existing copy is the lab's own. Raises ConfigError naming what went wrong.
    """
    from peftbench.core.errors import ConfigError, Problem
    from peftbench.core.files import write_text_atomic
    from peftbench.plan.schema import SAFE_NAME

    if not re.fullmatch(SAFE_NAME, name):
        message = "A profile name is a file name: letters, digits, '.', '_' or '-', no path separators."
        raise ConfigError([Problem("peftbench clusters copy", name, message)])
    source = find_profile(name, profiles)
    target = Path(to) / f"{name}.yaml"
    if source is None:
        known = tuple(p.name for p in list_profiles(profiles))
        message = f"No profile for cluster {name!r} in {searched(profiles)}."
        raise ConfigError([Problem("peftbench clusters copy", name, message, name, known)])
    if target.exists():
        message = "Already exists (a lab's own profile is never overwritten): edit it, or remove it first."
        raise ConfigError([Problem(str(target), "<file>", message)])
    text = source.read_text(encoding="utf-8")
    target.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(target, lambda f: f.write(text))
    return target
