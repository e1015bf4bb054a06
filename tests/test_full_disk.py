"""A full or read-only file system, on REAL small tmpfs mounts: every writer says one line naming the
file, the file system and what to free (core's CannotWrite), leaves no lock or temp file behind and
loses nothing already written; a run that fills its disk ends with that line in its result.

Mounting needs root (as on the project's machines and CI); elsewhere these tests skip, saying why.
"""

from __future__ import annotations

import errno
import json
import os
import pickle
import re
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from peftbench.cli import app
from peftbench.core.errors import CannotWrite, disk_trouble, human_bytes
from peftbench.core.files import write_json_atomic, write_paths_atomic, write_text_atomic
from peftbench.core.paths import RunPaths
from peftbench.core.results import read_result
from peftbench.core.spec import ModelRef
from peftbench.launch.claims import Claim
from peftbench.models.catalog import MODEL_CATALOG
from peftbench.models.loading import load_tokenizer
from peftbench.run.checkpoints import unfinished_checkpoints
from peftbench.run.full_disk import WHAT_TO_FREE, write_last_result
from peftbench.run.one import run_one
from tests.conftest import demo_run, save_tiny_bert
from tests.synthetic_results import write_synthetic_sweep
from tests.test_results import make_result

LOCAL = "local"


class SmallDisk:
    """A tmpfs of a few MiB mounted at `path`: filled up, made read-only or grown by the test."""

    def __init__(self, path: Path):
        self.path = path

    def mount(self, size: str) -> subprocess.CompletedProcess:
        self.path.mkdir(parents=True, exist_ok=True)
        return _mount("-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(self.path))

    def fill(self, leave: int = 0) -> None:
        """Take every free byte (but `leave`) with a filler file, as another program would."""
        filler = self.path / ".filler"
        chunk = 1 << 16
        with open(filler, "ab", buffering=0) as f:
            while chunk:
                try:
                    f.write(b"\0" * chunk)
                except OSError as err:
                    assert err.errno == errno.ENOSPC, err
                    chunk //= 2
        if leave:
            os.truncate(filler, filler.stat().st_size - leave)

    def read_only(self) -> None:
        _mount("-o", "remount,ro", str(self.path), check=True)

    def resize(self, size: str) -> None:
        """Free space: the tmpfs grown to `size`."""
        _mount("-o", f"remount,size={size}", str(self.path), check=True)

    def files(self) -> set[str]:
        """Every file and folder on the disk, as paths relative to it; the filler left out."""
        return {str(p.relative_to(self.path)) for p in self.path.rglob("*")} - {".filler"}

    def unmount(self) -> None:
        if subprocess.run(["umount", str(self.path)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(self.path)], capture_output=True)  # still busy: detach


def _mount(*args: str, check: bool = False) -> subprocess.CompletedProcess:
    return subprocess.run(["mount", *args], capture_output=True, text=True, check=check)


@pytest.fixture
def tmpfs(tmp_path: Path) -> Iterator[Callable[..., SmallDisk]]:
    """`tmpfs(size)`: a real tmpfs of that size mounted under tmp_path, unmounted after the test."""
    disks: list[SmallDisk] = []

    def make(size: str = "1m", name: str = "disk") -> SmallDisk:
        if os.geteuid() != 0:
            pytest.skip("mounting a tmpfs needs root")
        disk = SmallDisk((tmp_path / name).resolve())
        mounted = disk.mount(size)
        if mounted.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
        disks.append(disk)
        return disk

    yield make
    for disk in disks:
        disk.unmount()


def full_line(path: Path, disk: SmallDisk, size: str = "1.0 MiB") -> str:
    return (
        f"Cannot write {path}: the tmpfs file system mounted at {disk.path} is full (0 B free of {size}). "
        "To free space: delete what you no longer need on it, or write to another folder; then run again."
    )


def read_only_line(path: Path, disk: SmallDisk) -> str:
    return (
        f"Cannot write {path}: the tmpfs file system mounted at {disk.path} is read-only. "
        "Remount it read-write or write to another folder; then run again."
    )


# --- what counts as a disk error -----------------------------------------------------------------


def _caused(outer: BaseException, inner: BaseException, how: str = "__cause__") -> BaseException:
    setattr(outer, how, inner)
    return outer


@pytest.mark.parametrize(
    ("error", "trouble"),
    [
        (OSError(errno.ENOSPC, "No space left on device"), "full"),
        (OSError(errno.EDQUOT, "Disk quota exceeded"), "quota"),
        (_caused(RuntimeError("saving failed"), OSError(errno.EROFS, "Read-only file system")), "read-only"),
        (_caused(ValueError("x"), OSError(errno.ENOSPC, "full"), "__context__"), "full"),
        (Exception("Error while serializing: IoError(No space left on device (os error 28))"), "full"),
        (OSError(errno.ENOENT, "No such file or directory"), None),
        (ValueError("bad value"), None),
    ],
)
def test_a_disk_error_is_found_anywhere_in_the_chain(error: BaseException, trouble: str | None):
    found = disk_trouble(error)
    assert (found[0] if found else None) == trouble


def test_sizes_are_said_as_df_h_would():
    assert [human_bytes(n) for n in (0, 1023, 1536, 1 << 20, 5 * (1 << 30))] == [
        "0 B",
        "1023 B",
        "1.5 KiB",
        "1.0 MiB",
        "5.0 GiB",
    ]


# --- core/files.py: the atomic writers ---------------------------------------------------------


def test_a_full_disk_is_one_line_and_the_old_file_stays(tmpfs):
    disk = tmpfs("1m")
    result = disk.path / "result.json"
    write_json_atomic(result, {"kept": True})
    disk.fill()
    with pytest.raises(CannotWrite) as info:
        write_json_atomic(result, {"kept": False})
    assert str(info.value) == full_line(result, disk)
    assert str(pickle.loads(pickle.dumps(info.value))) == str(info.value)  # a Slurm task hands it back
    assert json.loads(result.read_text()) == {"kept": True}
    assert disk.files() == {"result.json"}


def test_a_read_only_disk_is_one_line_and_nothing_is_made(tmpfs):
    disk = tmpfs("1m")
    (disk.path / "table.md").write_text("old")
    disk.read_only()
    target = disk.path / "new" / "table.md"
    with pytest.raises(CannotWrite) as info:
        write_text_atomic(target, lambda f: f.write("new"))
    assert str(info.value) == read_only_line(target.parent, disk)
    assert disk.files() == {"table.md"} and (disk.path / "table.md").read_text() == "old"


def test_several_files_are_written_all_or_none_and_new_folders_go_again(tmpfs):
    disk = tmpfs("1m")
    a, b = disk.path / "out" / "a.txt", disk.path / "out" / "b.txt"
    write_paths_atomic({a: lambda t: t.write_text("old a"), b: lambda t: t.write_text("old b")})
    disk.fill(leave=8192)
    with pytest.raises(CannotWrite) as info:
        write_paths_atomic({a: lambda t: t.write_text("new a"), b: lambda t: t.write_bytes(b"b" * 65536)})
    assert str(info.value).startswith(f"Cannot write {b}: the tmpfs file system mounted at {disk.path} ")
    assert (a.read_text(), b.read_text()) == ("old a", "old b")
    c = disk.path / "new" / "deeper" / "c.bin"
    with pytest.raises(CannotWrite):
        write_paths_atomic({c: lambda t: t.write_bytes(b"c" * 65536)})
    assert disk.files() == {"out", "out/a.txt", "out/b.txt"}


# --- launch/claims.py and the CLI ---------------------------------------------------------------


@pytest.mark.parametrize("fault", ["full", "read-only"])
def test_a_claim_on_a_full_or_read_only_disk_leaves_no_lock(tmpfs, fault: str):
    disk = tmpfs("1m")
    (disk.path / "runs").mkdir()
    disk.fill() if fault == "full" else disk.read_only()
    lock = disk.path / "runs" / "sweep" / ".lock"
    with pytest.raises(CannotWrite) as info:
        Claim(lock, "peftbench sweep sweep.yaml").acquire()
    said = full_line(lock, disk) if fault == "full" else read_only_line(lock.parent, disk)
    assert str(info.value) == said
    assert disk.files() == {"runs"}  # no claim, no draft `..lock.<hex>`, no sweep folder


@pytest.mark.parametrize("verb", ["sweep", "resubmit"])
def test_sweep_and_resubmit_on_a_full_disk_say_one_line_and_leave_no_lock(tiny_demo: Path, tmpfs, verb: str):
    disk = tmpfs("1m")
    runs = disk.path / "runs"
    earlier = runs / "tiny-demo" / "0123456789ab" / "result.json"
    earlier.parent.mkdir(parents=True)
    earlier.write_text('{"written": "before"}')
    disk.fill()
    args = [verb, str(tiny_demo), "--cluster", LOCAL, "--runs-dir", str(runs)]
    planned = CliRunner().invoke(app, args)  # the plan sees the disk first (plan/disk.py)
    assert planned.exit_code == 2 and "GB free" in planned.stderr and "--force" in planned.stderr
    out = CliRunner().invoke(app, [*args, "--force"])  # past the plan: the disk itself refuses
    assert out.exit_code == 1, out.output
    assert out.stderr.splitlines() == [full_line(runs / "tiny-demo" / ".lock", disk)]
    assert disk.files() == {str(p.relative_to(disk.path)) for p in (earlier, *earlier.parents[:3])}
    assert earlier.read_text() == '{"written": "before"}'


def test_on_a_read_only_disk_sweep_refuses_naming_it_and_status_still_reads(tiny_demo: Path, tmpfs):
    disk = tmpfs("1m")
    (disk.path / "runs").mkdir()
    disk.read_only()
    args = [str(tiny_demo), "--cluster", LOCAL, "--runs-dir", str(disk.path / "runs")]
    refused = CliRunner().invoke(app, ["sweep", *args])
    assert refused.exit_code == 2 and "Traceback" not in refused.output
    assert read_only_line(disk.path / "runs", disk) in refused.stderr
    shown = CliRunner().invoke(app, ["status", *args])
    assert shown.exit_code == 0, shown.output
    assert disk.files() == {"runs"}


@pytest.mark.parametrize("fault", ["full", "read-only"])
def test_collect_and_report_on_a_full_or_read_only_disk_keep_the_last_tables(
    tmpfs, tmp_path: Path, fault: str
):
    sweep = tmp_path / "synth"
    write_synthetic_sweep(sweep)
    disk = tmpfs("1m")
    out = disk.path / "tables"
    first = CliRunner().invoke(app, ["collect", str(sweep), "--out", str(out)])
    assert first.exit_code == 0, first.output
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    disk.fill() if fault == "full" else disk.read_only()
    for verb in ("collect", "report"):
        again = CliRunner().invoke(app, [verb, str(sweep), "--out", str(out)])
        assert again.exit_code == 1, again.output
        parquet = out / "results.parquet"
        said = full_line(parquet, disk) if fault == "full" else read_only_line(parquet, disk)
        assert again.stderr.splitlines() == [said]
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


# --- run/one.py: a run that fills its disk --------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_bert(tmp_path_factory: pytest.TempPathFactory) -> ModelRef:
    """A 2-layer BERT (random weights, seeded) with MiniLM-L6's tokenizer: ~4 MB of weights."""
    return save_tiny_bert(tmp_path_factory.mktemp("tiny-bert"), load_tokenizer(MODEL_CATALOG["minilm-l6"]))


def test_a_run_that_fills_its_disk_fails_with_the_line_and_loses_nothing_else(tmpfs, tiny_bert: ModelRef):
    disk = tmpfs("2m")
    spec = demo_run("full", max_steps=2).model_copy(update={"model": tiny_bert})  # checkpoint, model: 4 MB+
    neighbour = disk.path / "demo" / "0123456789ab" / "result.json"
    neighbour.parent.mkdir(parents=True)
    neighbour.write_text('{"written": "before"}')
    paths = RunPaths(disk.path / "demo" / spec.run_id)
    result = run_one(spec, paths.root)
    assert result.status == "failed"
    *_, removed, line = result.error.splitlines()
    start = f"Cannot write {paths.root}: the tmpfs file system mounted at {disk.path} "
    assert line.startswith(start) and line.endswith(f". To free space: {WHAT_TO_FREE}.")
    room = line[len(start) :].split(". To free space")[0]
    # safetensors removes the file it could not finish: the disk has room again, less than it needed
    ran_out = r"ran out of space \(now [\d.]+ [KM]iB free of 2\.0 MiB, less than was being written\)"
    assert room == "is full (0 B free of 2.0 MiB)" or re.fullmatch(ran_out, room), room
    assert removed.startswith("Removed this run's unfinished files to make room: checkpoints/checkpoint-2/ (")
    assert read_result(paths.result) == result
    assert unfinished_checkpoints(paths.checkpoints) == [] and not paths.artifact.exists()
    assert not [p for p in disk.files() if p.endswith(".tmp")]
    assert neighbour.read_text() == '{"written": "before"}' and paths.spec.is_file()


def test_a_result_the_disk_refuses_is_returned_with_the_line_and_logged(tmpfs, caplog):
    disk = tmpfs("1m")
    paths = RunPaths(disk.path / "run")
    paths.root.mkdir()
    disk.read_only()
    failed = make_result("failed", error="Traceback ...\nOSError: [Errno 30] Read-only file system")
    written = write_last_result(paths, failed, OSError(errno.EROFS, "Read-only file system"))
    assert written.status == "failed" and written.error.splitlines()[-1] == read_only_line(paths.root, disk)
    assert written.error.startswith("Traceback ...") and not paths.result.exists()
    assert "no result.json could be written" in caplog.text
    success = write_last_result(paths, make_result("success"))
    assert success.status == "failed" and success.error.splitlines() == [
        "Trained and evaluated, but result.json could not be written.",
        read_only_line(paths.result, disk),
    ]
