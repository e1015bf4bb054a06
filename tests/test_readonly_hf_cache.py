"""A task's bundled or local files load where the HF cache is read-only (a lab's shared cache bound
read-only into the image: what `make image-rehearsal` found every demo run failing on). `datasets`
then writes its arrow copy to a folder of the user's under the temporary directory instead.

The cache is made read-only by a real read-only bind mount in a mount namespace of its own
(`unshare`), since permission bits do not stop root.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

LOAD = (
    "from peftbench.tasks.sources import bundled_split, local_files_cache\n"
    "print(local_files_cache() is not None, len(bundled_split('movie_sentiment', 'train')))\n"
)


@pytest.mark.skipif(shutil.which("unshare") is None, reason="no unshare (util-linux)")
def test_bundled_data_loads_with_the_datasets_cache_read_only(tmp_path: Path):
    cache, tmp = tmp_path / "hf", tmp_path / "tmp"
    cache.mkdir()
    tmp.mkdir()
    env = {
        **os.environ,
        "HF_DATASETS_CACHE": str(cache / "datasets"),
        "TMPDIR": str(tmp),
        "PYTHONPATH": str(REPO / "src"),
    }
    mount_then_load = f'mount --bind -o ro "{cache}" "{cache}" && exec "{sys.executable}" -c "$LOAD"'
    done = subprocess.run(
        ["unshare", "--map-root-user", "--mount", "sh", "-c", mount_then_load],
        capture_output=True,
        text=True,
        env={**env, "LOAD": LOAD},
        timeout=120,
    )
    if done.returncode != 0 and "unshare failed" in done.stderr:
        pytest.skip(f"this machine refuses user namespaces: {done.stderr.strip()}")
    assert done.returncode == 0, done.stderr[-2000:]
    redirected, rows = done.stdout.split()
    assert redirected == "True" and int(rows) > 0
    assert not any(cache.iterdir())  # nothing written into the read-only cache
    assert [p.name for p in tmp.iterdir()] == ["peftbench-datasets-0"]  # uid 0 in the namespace


def test_a_writable_cache_is_used_as_before(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    import datasets

    from peftbench.tasks.sources import local_files_cache

    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", str(tmp_path / "not-yet" / "datasets"))
    assert local_files_cache() is None
