"""requirements.lock agrees with pyproject.toml and the Makefile's `make lock`, without running it.

Regenerating the lock takes minutes and the network; these checks take milliseconds and catch
the usual slip: a dependency edited in pyproject.toml but the lock not regenerated (or the reverse).
"""

from __future__ import annotations

import re
import shlex
import sys

import pytest
import tomllib
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from peftbench.tools.lockfile import read_lock, read_torch_pin
from tests.conftest import REPO

LOCK = read_lock(REPO / "requirements.lock")
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
DIRECT = [Requirement(r) for r in [*PYPROJECT["dependencies"], *PYPROJECT["optional-dependencies"]["test"]]]
SHORT_OPTIONS = {"-c": "--constraint", "-o": "--output-file"}
NOT_RECORDED = {"--quiet"}  # pip-compile leaves these out of the header


@pytest.mark.parametrize("requirement", DIRECT, ids=str)
def test_every_direct_dependency_is_locked_within_its_range(requirement: Requirement):
    name = canonicalize_name(requirement.name)
    assert name in LOCK.pins, f"{name} is in pyproject.toml but not in requirements.lock: run `make lock`"
    assert requirement.specifier.contains(LOCK.pins[name], prereleases=True), (
        f"requirements.lock pins {name}=={LOCK.pins[name]}, outside pyproject's {requirement.specifier}: "
        "run `make lock`"
    )


def test_every_pin_has_hashes():
    assert LOCK.pins and not LOCK.unhashed, (
        f"pinned without --hash (pip --require-hashes refuses): {LOCK.unhashed}"
    )


def test_torch_is_pinned_apart_and_nowhere_else():
    assert "torch" not in LOCK.pins
    assert not any(canonicalize_name(r.name) == "torch" for r in DIRECT)
    assert re.fullmatch(r"\d+\.\d+\.\d+", read_torch_pin(REPO / "requirements-torch.txt") or "")


def header_options() -> set[str]:
    """The options in the lock's header, as pip-compile records them: `--name=value` or a bare flag."""
    assert LOCK.command is not None, "requirements.lock has no pip-compile header"
    return set(shlex.split(LOCK.command.removeprefix("pip-compile")))


def makefile_options(takes_value: set[str]) -> set[str]:
    """The options of the Makefile's `lock` recipe, spelt as the header spells them."""
    text = (REPO / "Makefile").read_text(encoding="utf-8").replace("\\\n", " ")
    recipe = next(line for line in text.splitlines() if "pip-compile " in line)
    words = iter(shlex.split(recipe.split("pip-compile", 1)[1]))
    out = set()
    for word in words:
        name = SHORT_OPTIONS.get(word, word)
        out.add(f"{name}={next(words)}" if name in takes_value else name)
    return out - NOT_RECORDED


def test_the_lock_header_names_the_makefile_s_pip_compile_options():
    header = header_options()
    takes_value = {option.split("=", 1)[0] for option in header if "=" in option}
    assert makefile_options(takes_value) == header, (
        "`make lock` and the lock's header disagree: run `make lock`"
    )


@pytest.mark.environment
def test_the_lock_was_made_with_the_python_ci_runs():
    assert LOCK.python == f"{sys.version_info.major}.{sys.version_info.minor}"
