"""The image check of `peftbench doctor`: an image whose Python or submitit differ from this
environment's is named, and so is a missing image or a broken apptainer. Apptainer is replaced by a
script.
"""

from __future__ import annotations

import json
import stat
import sys
from pathlib import Path

import pytest

from peftbench.plan.schema import ClusterProfile
from peftbench.tools.image_check import check_container

VENV_BIN = Path(sys.executable).parent


def fake_apptainer(folder: Path, body: str) -> None:
    """An `apptainer` on PATH: skips `exec`, its flags and the image, then runs `body`."""
    script = folder / "apptainer"
    script.write_text(
        "#!/bin/sh\nshift\n"
        "while [ $# -gt 0 ]; do\n"
        '  case "$1" in --bind|--env) shift 2;; --*) shift;; *) shift; break;; esac\n'
        "done\n" + body
    )
    script.chmod(script.stat().st_mode | stat.S_IEXEC)


@pytest.fixture
def image_profile(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> ClusterProfile:
    image = tmp_path / "peftbench-0.1.0.sif"
    image.write_bytes(b"sif")
    monkeypatch.delenv("APPTAINER_CONTAINER", raising=False)
    monkeypatch.setenv("PATH", f"{tmp_path}:{VENV_BIN}:/usr/bin:/bin")
    return ClusterProfile(name="c", launcher="local", container={"image": str(image), "binds": ["/a:/b"]})


def test_an_image_with_the_same_python_and_submitit_passes(tmp_path: Path, image_profile: ClusterProfile):
    fake_apptainer(tmp_path, 'exec "$@"\n')
    [check] = check_container(image_profile.container)
    assert check.status == "ok", check.detail
    assert "submitit 1.5.4" in check.detail and "cloudpickle" in check.detail


def test_an_image_with_another_python_or_submitit_fails_by_name(
    tmp_path: Path, image_profile: ClusterProfile
):
    answer = {"python": "3.12.1", "torch": "2.13.0+cu128", "submitit": "1.5.1", "cloudpickle": None}
    fake_apptainer(tmp_path, f"echo '{json.dumps(answer)}'\n")
    [check] = check_container(image_profile.container)
    assert check.status == "fail"
    assert "python 3.11" in check.detail and "3.12.1 in the image" in check.detail
    assert "submitit 1.5.4 here, 1.5.1 in the image" in check.detail
    assert "torch" not in check.detail  # the same version; the build (+cpu, +cu128) may differ


def test_a_missing_image_or_a_broken_apptainer_is_reported(tmp_path: Path, image_profile: ClusterProfile):
    fake_apptainer(tmp_path, "echo 'FATAL: could not open image' >&2; exit 255\n")
    [broken] = check_container(image_profile.container)
    assert broken.status == "fail" and "FATAL: could not open image" in broken.detail
    (tmp_path / "apptainer").unlink()
    assert check_container(image_profile.container)[0].status == "info"
    Path(image_profile.container.image).unlink()
    [missing] = check_container(image_profile.container)
    assert missing.status == "fail" and "no readable image" in missing.detail
