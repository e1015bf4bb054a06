"""`make base-digest` (scripts/check_base_digest.sh): it never passes silently when it cannot check.

No registry is reachable here, which is the case under test: the message must say what could not
be checked and why. Where skopeo is installed, the real skopeo fails on the real network.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import REPO

SCRIPT = REPO / "scripts" / "check_base_digest.sh"
DEF = REPO / "apptainer" / "peftbench.def"


def check(path: str, definition: Path = DEF) -> subprocess.CompletedProcess:
    env = {**os.environ, "PATH": path, "SKOPEO_TIMEOUT": "20"}
    return subprocess.run(
        [shutil.which("bash") or "/bin/bash", str(SCRIPT), str(definition)],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )


def test_without_skopeo_the_check_fails_and_says_why(tmp_path: Path):
    bare = tmp_path / "bin"  # the system's tools but no skopeo
    bare.mkdir()
    for tool in ("awk", "timeout", "cat"):
        (bare / tool).symlink_to(shutil.which(tool))
    done = check(str(bare))
    assert done.returncode == 2
    assert "skopeo is not on PATH" in done.stderr and "apptainer/peftbench.def" in done.stderr


@pytest.mark.skipif(shutil.which("skopeo") is None, reason="skopeo is not installed here")
def test_an_unreachable_registry_fails_the_check_with_the_tag_it_could_not_ask_for():
    done = check(os.environ["PATH"])
    if done.returncode == 0:
        pytest.skip("the registry is reachable from here: nothing to test about its absence")
    assert done.returncode == 2, done.stderr
    assert "cannot reach the registry for docker://nvidia/cuda:12.8.1-devel-ubuntu22.04" in done.stderr


def test_a_definition_without_tag_lines_is_refused(tmp_path: Path):
    if shutil.which("skopeo") is None:
        pytest.skip("skopeo is not installed here (the refusal comes after looking for it)")
    bad = tmp_path / "x.def"
    bad.write_text("Bootstrap: docker\nFrom: nvidia/cuda@sha256:00\n")
    done = check(os.environ["PATH"], bad)
    assert done.returncode == 2 and "no '# tag: IMAGE:TAG' line" in done.stderr
