"""Provenance of the image a run ran in: path and sha256 from the launcher, hashed once per image."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

import peftbench.core.checkout as checkout
import peftbench.core.image as image_module
from peftbench.core.image import image_in_use, image_sha256
from peftbench.core.results import Provenance

IMAGE_VARIABLES = (
    "PEFTBENCH_IMAGE",
    "PEFTBENCH_IMAGE_SHA256",
    "APPTAINER_CONTAINER",
    "SINGULARITY_CONTAINER",
)


@pytest.fixture(autouse=True)
def clean_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    for name in IMAGE_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


@pytest.fixture
def image(tmp_path: Path) -> Path:
    path = tmp_path / "peftbench-0.1.0.sif"
    path.write_bytes(b"\x00squashfs" * 10_000)
    return path


def test_outside_an_image_nothing_is_recorded():
    assert image_in_use() == (None, None)


def test_the_launcher_s_variables_win_and_nothing_is_hashed(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("PEFTBENCH_IMAGE", "/shared/peftbench-0.1.0.sif")
    monkeypatch.setenv("PEFTBENCH_IMAGE_SHA256", "ab" * 32)
    monkeypatch.setenv("APPTAINER_CONTAINER", "/elsewhere.sif")
    monkeypatch.setattr(image_module, "image_sha256", lambda path: pytest.fail("hashed in the run"))
    assert image_in_use() == ("/shared/peftbench-0.1.0.sif", "ab" * 32)


def test_apptainer_s_own_variable_is_hashed_once(image: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("APPTAINER_CONTAINER", str(image))
    digest = hashlib.sha256(image.read_bytes()).hexdigest()
    assert image_in_use() == (str(image), digest)
    monkeypatch.setattr(hashlib, "sha256", lambda *a: pytest.fail("hashed twice"))
    assert image_in_use() == (str(image), digest)


def test_a_rebuilt_image_is_hashed_again(image: Path):
    first = image_sha256(image)
    image.write_bytes(b"another build")
    assert image_sha256(image) == hashlib.sha256(b"another build").hexdigest() != first


def test_an_image_path_not_visible_in_the_container_has_no_sha(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("APPTAINER_CONTAINER", "/not/bound/here.sif")
    assert image_in_use() == ("/not/bound/here.sif", None)


def test_inside_the_image_the_commit_comes_from_its_build(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    monkeypatch.setenv("PEFTBENCH_GIT_COMMIT", "c0ffee" * 6 + "abcd")
    monkeypatch.setenv("PEFTBENCH_GIT_DIRTY", "false")
    assert checkout.git_state.__wrapped__(tmp_path) == ("c0ffee" * 6 + "abcd", False)


def test_old_results_without_image_fields_still_read():
    old = {
        "peftbench_version": "0.1.0",
        "packages": {},
        "python": "3.11.7",
        "hostname": "n1",
        "device": "cpu",
        "torch_threads": 2,
        "seed": 0,
    }
    record = Provenance.model_validate(old)
    assert (record.image, record.image_sha256) == (None, None)
