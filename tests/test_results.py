"""The result record: atomic write, tolerant read, schema round trip."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

import peftbench.core.files as files
from peftbench.core.paths import RunPaths
from peftbench.core.results import Cost, RunResult, UnreadableResult, has_success, read_result, write_result
from tests.conftest import demo_run


def make_result(status: str = "success", **extra) -> RunResult:
    spec = demo_run("lora")
    return RunResult(
        run_id=spec.run_id,
        status=status,
        spec=spec,
        cost=Cost(wall_seconds=1.0),
        validation={"accuracy": 0.8},
        test={"accuracy": 0.7},
        started_at="2026-01-01T00:00:00+00:00",
        finished_at="2026-01-01T00:01:00+00:00",
        **extra,
    )


def test_round_trip(tmp_path: Path):
    path = tmp_path / "result.json"
    write_result(path, make_result())
    assert read_result(path) == make_result()


def test_a_crash_mid_write_leaves_the_old_file_and_no_temp(tmp_path: Path, monkeypatch):
    path = tmp_path / "result.json"
    write_result(path, make_result("failed", error="first attempt"))
    before = path.read_bytes()

    def dump_half_then_crash(payload, f, **kwargs):
        f.write(json.dumps(payload)[:50])
        raise KeyboardInterrupt("killed mid-write")

    monkeypatch.setattr(files.json, "dump", dump_half_then_crash)
    with pytest.raises(KeyboardInterrupt):
        write_result(path, make_result())
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["result.json"]


@pytest.mark.parametrize("content", ["{not json", '{"run_id": "x"}', "", '{"status": "success"'])
def test_unreadable_results_name_the_file(tmp_path: Path, content: str):
    path = tmp_path / "result.json"
    path.write_text(content)
    with pytest.raises(UnreadableResult, match=str(path)):
        read_result(path)


def test_has_success(tmp_path: Path):
    paths = RunPaths(tmp_path)
    assert not has_success(paths)
    write_result(paths.result, make_result("failed", error="boom"))
    assert not has_success(paths)
    write_result(paths.result, make_result())
    assert has_success(paths)
    paths.result.write_text("{corrupt")
    assert not has_success(paths)


@pytest.mark.parametrize("umask", [0o002, 0o022])
def test_written_files_follow_the_umask(tmp_path: Path, umask: int):
    """A shared project folder: what one member writes, the group (umask 002) or all (022) can read."""
    from peftbench.core.files import write_path_atomic

    old = os.umask(umask)
    try:
        paths = RunPaths(tmp_path / "sweep" / "run")
        write_result(paths.result, make_result())
        write_path_atomic(tmp_path / "sweep" / "results.csv", lambda tmp: tmp.write_text("a,b\\n"))
    finally:
        os.umask(old)
    for path in (paths.result, paths.root, tmp_path / "sweep" / "results.csv"):
        expected = (0o777 if path.is_dir() else 0o666) & ~umask
        assert stat.S_IMODE(path.stat().st_mode) == expected, path
