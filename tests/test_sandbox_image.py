"""A sandbox image (a directory, `apptainer build --sandbox`; what `make image-rehearsal` runs) has
a digest like a .sif: its tree hashed once (core.image.sandbox_sha256), handed to every task by the
launcher and recorded in provenance."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from peftbench.core.image import image_in_use, image_sha256, sandbox_sha256
from peftbench.launch.container import container_python
from peftbench.plan.schema import ClusterProfile


@pytest.fixture
def sandbox(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    root = tmp_path / "image"
    (root / "opt" / "venv" / "bin").mkdir(parents=True)
    (root / "etc").mkdir()
    (root / "etc" / "passwd").write_text("root:x:0:0::/root:/bin/sh\n")
    (root / "opt" / "venv" / "bin" / "python").symlink_to("/usr/bin/python3.11")
    (root / "opt" / "venv" / "lib.py").write_text("x = 1\n")
    return root


def test_the_same_tree_anywhere_has_the_same_digest_and_any_change_changes_it(sandbox: Path, tmp_path: Path):
    digest = sandbox_sha256(sandbox)
    assert sandbox_sha256(shutil.copytree(sandbox, tmp_path / "copy", symlinks=True)) == digest
    (sandbox / "opt" / "venv" / "lib.py").write_text("x = 2\n")
    changed = sandbox_sha256(sandbox)
    assert changed != digest
    (sandbox / "opt" / "venv" / "lib.py").chmod(0o600)  # readable by its owner only: path and mode count
    private = sandbox_sha256(sandbox)
    assert private not in {digest, changed}
    (sandbox / "opt" / "venv" / "lib.py").write_text("x = 3\n")
    assert sandbox_sha256(sandbox) == private  # the same for a user who cannot read it
    (sandbox / "opt" / "venv" / "bin" / "python").unlink()
    (sandbox / "opt" / "venv" / "bin" / "python").symlink_to("/usr/bin/python3.12")
    assert len({digest, changed, private, sandbox_sha256(sandbox)}) == 4


def test_a_sandbox_is_hashed_once_then_remembered_until_a_file_changes(sandbox: Path):
    first = image_sha256(sandbox)
    assert first == sandbox_sha256(sandbox)
    memo = next((sandbox.parent / "cache" / "peftbench").glob("image-sha256.json")).read_text()
    assert f"{sandbox.resolve()}:tree:" in memo and first in memo
    (sandbox / "opt" / "venv" / "lib.py").write_text("x = 22\n")  # a rebuilt file: new size
    assert image_sha256(sandbox) == sandbox_sha256(sandbox) != first


def test_the_launcher_hands_a_sandbox_s_digest_to_every_task(sandbox: Path):
    profile = ClusterProfile(name="site", launcher="local", container={"image": str(sandbox), "nv": False})
    line = container_python(profile)
    assert line is not None and f"PEFTBENCH_IMAGE_SHA256={sandbox_sha256(sandbox)}" in line


def test_a_run_inside_a_sandbox_records_its_path_and_digest(sandbox: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("PEFTBENCH_IMAGE", raising=False)
    monkeypatch.delenv("PEFTBENCH_IMAGE_SHA256", raising=False)
    monkeypatch.setenv("APPTAINER_CONTAINER", str(sandbox))
    assert image_in_use() == (str(sandbox), sandbox_sha256(sandbox))
