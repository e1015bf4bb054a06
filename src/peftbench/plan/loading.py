"""YAML files into validated schemas: every problem of a file gathered into one ConfigError."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from peftbench.core.errors import ConfigError, Problem
from peftbench.core.spec import RunSpec
from peftbench.plan.expand import expand_sweep
from peftbench.plan.problems import check_keys, pydantic_problems, split_unknown_keys
from peftbench.plan.schema import ClusterProfile, SweepSpec


def read_yaml(path: Path, what: str = "YAML file") -> dict[str, Any]:
    """A YAML mapping, or a ConfigError naming the file and the line; `what` the file is meant to be."""
    if path.is_dir():
        raise ConfigError([Problem(str(path), "<file>", f"Is a directory, not a {what}.")])
    if not path.is_file():
        raise ConfigError([Problem(str(path), "<file>", "No such file.")])
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark is not None else "<file>"
        raise ConfigError([Problem(str(path), where, f"Not valid YAML: {err}")]) from err
    if not isinstance(data, dict):
        raise ConfigError([Problem(str(path), "<top level>", "Expected a mapping of keys to values.")])
    return data


def load_cluster(name_or_path: str, profiles: Path | None = None) -> ClusterProfile:
    """A cluster profile by name (searched as `plan.profiles` says) or by a YAML path."""
    from peftbench.plan.profiles import find_profile, list_profiles, searched

    path = Path(name_or_path)
    if path.suffix not in {".yaml", ".yml"}:
        found = find_profile(name_or_path, profiles)
        if found is None:
            known = tuple(p.name for p in list_profiles(profiles))
            message = f"No profile for cluster {name_or_path!r} in {searched(profiles)}."
            raise ConfigError([Problem("--cluster", name_or_path, message, name_or_path, known)])
        path = found
    data = read_yaml(path, "cluster profile")
    data.setdefault("name", path.stem)
    problems = check_keys(str(path), data, ClusterProfile)
    if problems:
        raise ConfigError(problems)
    try:
        profile = ClusterProfile.model_validate(data)
    except ValidationError as err:
        raise ConfigError(pydantic_problems(str(path), err)) from err
    profile._file = str(path)
    return profile


@dataclass(frozen=True)
class Sweep:
    """A validated sweep file and its runs, expanded once (every command reads both)."""

    file: Path
    spec: SweepSpec
    runs: list[RunSpec]

    @property
    def name(self) -> str:
        return self.spec.name


def load_sweep(path: Path) -> Sweep:
    """Read, fully validate and expand a sweep file; one ConfigError lists every problem.

    Structural problems (unknown keys, wrong types) do not hide the rest: the offending keys are
    set aside and the remainder is still checked for unknown names and invalid grid values.
    """
    data = read_yaml(path, "sweep file")
    data.setdefault("name", path.stem)
    file = str(path)
    data, problems = split_unknown_keys(file, data, SweepSpec)
    spec = _validated_spec(file, data, problems)
    runs = [] if spec is None else _expanded(spec, file, problems)
    if problems or spec is None:
        raise ConfigError(problems)
    return Sweep(path, spec, runs)


def _validated_spec(file: str, data: dict[str, Any], problems: list[Problem]) -> SweepSpec | None:
    """`data` as a SweepSpec, or None after adding its problems. When pydantic refuses some keys, the
    rest is validated again without them, so their problems do not hide the others'."""
    removed: set[Any] = set()
    for _ in range(2):
        try:
            return SweepSpec.model_validate(data)
        except ValidationError as err:  # a key set aside is not also "missing" on the second pass
            problems += [p for p in pydantic_problems(file, err) if p.key not in removed]
            removed = {e["loc"][0] for e in err.errors()}
            data = {k: v for k, v in data.items() if k not in removed}
    return None


def _expanded(spec: SweepSpec, file: str, problems: list[Problem]) -> list[RunSpec]:
    """The spec's runs, or none after adding the expansion's problems."""
    try:
        return expand_sweep(spec, file=file)
    except ConfigError as err:
        problems += err.problems
        return []
