"""The rehearsal's `apptainer` stand-in (apptainer/rehearsal/bin/apptainer) on a tiny prebuilt root.

The stand-in is what `make image-rehearsal` runs the image with, since Apptainer cannot be installed
here; these tests hold it to Apptainer's semantics for `exec` over a sandbox with real namespaces
and mounts: the caller's own uid (not root), the image read-only, $HOME and the working directory
bound, `--bind`/`--env` as launch/container.py writes them, the image's %environment sourced, no
network with `--net --network none`, and a write into the image traced. The root is a handful of
this machine's binaries and their libraries (a few MB, made once per module).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from peftbench.launch.container import apptainer_exec_args
from peftbench.plan.schema import ContainerSettings
from tests.conftest import REPO

STANDIN = REPO / "apptainer" / "rehearsal" / "bin" / "apptainer"
BINARIES = ("sh", "cat", "id", "touch", "ls", "env", "pwd")
NOBODY = 65534

pytestmark = pytest.mark.skipif(
    sys.platform != "linux" or not Path("/usr/bin/python3").exists(),
    reason="Linux namespaces, and the system Python the stand-in runs with (#!/usr/bin/python3)",
)


def copy_with_libraries(binary: str, root: Path) -> None:
    path = shutil.which(binary)
    assert path, binary
    shutil.copy(path, root / "bin" / binary)
    linked = subprocess.run(["ldd", path], capture_output=True, text=True).stdout
    for word in linked.split():
        if word.startswith("/") and Path(word).exists():
            target = root / word.lstrip("/")
            target.parent.mkdir(parents=True, exist_ok=True)
            if not target.exists():
                shutil.copy(word, target)


@pytest.fixture(scope="module")
def tiny_root() -> Iterator[Path]:
    """A sandbox image: a few binaries, /etc/passwd and group, and a %environment that sets a default."""
    base = Path(os.environ.get("TMPDIR", "/tmp")) / f"standin-{os.getpid()}"
    root = base / "image"
    for folder in ("bin", "etc", "proc", "sys", "dev", "tmp", "home", ".singularity.d/env"):
        (root / folder).mkdir(parents=True, exist_ok=True)
    for binary in BINARIES:
        copy_with_libraries(binary, root)
    (root / "etc" / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\n")
    (root / "etc" / "group").write_text("root:x:0:\n")
    (root / ".singularity.d" / "env" / "90-environment.sh").write_text(
        'export FROM_IMAGE="${FROM_IMAGE:-image default}"\n'
    )
    subprocess.run(["chmod", "-R", "a+rX", str(base)], check=True)
    yield root
    shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def caller(tiny_root: Path, request: pytest.FixtureRequest) -> Path:
    """A folder of the caller's own (with its $HOME) that `nobody` can reach, unlike pytest's caller."""
    folder = tiny_root.parent / request.node.name
    (folder / "home").mkdir(parents=True)
    folder.chmod(0o755)
    if os.getuid() == 0:
        os.chown(folder / "home", NOBODY, NOBODY)
    return folder


def as_caller(tmp: Path) -> tuple[dict[str, str], object]:
    """Environment and preexec for the stand-in's caller: `nobody` where the tests run as root."""
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp / "home")}
    if os.getuid() != 0:
        return env, None

    def drop() -> None:
        os.setgroups([])
        os.setgid(NOBODY)
        os.setuid(NOBODY)

    return env, drop


def standin(args: list[str], tmp: Path, **extra_env: str) -> subprocess.CompletedProcess:
    env, drop = as_caller(tmp)
    return subprocess.run(
        [str(STANDIN), *args],
        capture_output=True,
        text=True,
        env={**env, **extra_env},
        cwd=env["HOME"],
        preexec_fn=drop,  # the test process is single-threaded
        timeout=30,
    )


@pytest.fixture
def usable(tiny_root: Path, caller: Path) -> None:
    probe = standin(["exec", str(tiny_root), "true"], caller)
    if "unshare" in probe.stderr and "Operation not permitted" in probe.stderr:
        pytest.skip(f"this machine refuses unprivileged user namespaces: {probe.stderr.strip()}")


def test_help_says_it_is_a_stand_in():
    done = subprocess.run([str(STANDIN), "--help"], capture_output=True, text=True)
    assert done.returncode == 0 and "STAND-IN for `apptainer exec`" in done.stdout
    assert "This is not Apptainer" in done.stdout


def test_the_line_container_py_writes_runs_as_the_caller_with_the_image_read_only(
    tiny_root: Path, caller: Path, usable: None
):
    data = caller / "data"
    data.mkdir()
    (data / "x.txt").write_text("shared data\n")
    data.chmod(0o755)
    (data / "x.txt").chmod(0o644)
    settings = ContainerSettings(image=str(tiny_root), binds=[f"{data}:/data:ro"], env={"A": "1,2", "B": "b"})
    words = apptainer_exec_args(settings)[1:]  # the launcher's words, without the program name
    script = (
        'id -u; echo "A=$A B=$B FROM_IMAGE=$FROM_IMAGE PEFTBENCH_IMAGE=$PEFTBENCH_IMAGE"; pwd; '
        "cat /data/x.txt; touch /in-image 2>&1; touch /data/y 2>&1; touch ~/home-file && echo home writable"
    )
    done = standin([*words, "sh", "-c", script], caller)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == str(os.getuid() if os.getuid() else NOBODY)
    assert lines[1] == f"A=1,2 B=b FROM_IMAGE=image default PEFTBENCH_IMAGE={tiny_root}"
    assert lines[2] == str(caller / "home")  # the working directory, bound and kept
    assert lines[3] == "shared data"
    assert "/in-image" in lines[4] and "Read-only file system" in lines[4]
    assert "/data/y" in lines[5] and "Read-only file system" in lines[5]
    assert lines[6] == "home writable" and (caller / "home" / "home-file").exists()


def test_a_value_from_outside_wins_over_the_image_default(tiny_root: Path, caller: Path, usable: None):
    done = standin(["exec", str(tiny_root), "sh", "-c", "echo $FROM_IMAGE"], caller, FROM_IMAGE="outside")
    assert done.stdout.strip() == "outside", done.stderr


def test_no_network_in_a_network_namespace_of_its_own(tiny_root: Path, caller: Path, usable: None):
    done = standin(["exec", "--net", "--network", "none", str(tiny_root), "cat", "/proc/net/dev"], caller)
    assert done.returncode == 0, done.stderr
    interfaces = [line.split(":")[0].strip() for line in done.stdout.splitlines()[2:]]
    assert interfaces == ["lo"]


def test_a_write_into_the_image_is_traced(tiny_root: Path, caller: Path, usable: None):
    if shutil.which("strace") is None:
        pytest.skip("strace is not installed (the rehearsal installs it)")
    log = caller / "writes.log"
    log.touch()
    log.chmod(0o666)
    done = standin(
        ["exec", str(tiny_root), "sh", "-c", "touch /made-in-image; touch /tmp/fine; true"],
        caller,
        APPTAINER_STANDIN_TRACE=str(log),
    )
    assert done.returncode == 0, done.stderr
    written = log.read_text()
    assert '"/made-in-image"' in written and "EROFS" in written
    assert '"/tmp/fine"' not in written  # /tmp is bound writable


def test_a_sif_or_an_unknown_option_is_refused_in_one_line(tiny_root: Path, caller: Path):
    sif = caller / "x.sif"
    sif.write_bytes(b"")
    done = standin(["exec", str(sif), "true"], caller)
    assert done.returncode == 255 and "only a sandbox image (a directory)" in done.stderr
    done = standin(["exec", "--overlay", "o.img", str(tiny_root), "true"], caller)
    assert done.returncode == 255 and "--overlay is not rehearsed" in done.stderr
