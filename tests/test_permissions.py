"""Every file a run writes follows the umask, weights included (core.files.follow_umask).

A lab shares one project folder with umask 002: what one member's run writes, the group must read.
safetensors makes its files 0600 whatever the umask; a run gives them back the umask's modes.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from peftbench.core.files import current_umask, follow_umask
from peftbench.core.results import write_spec
from tests.conftest import REPO, demo_run

UMASKS = [pytest.param(0o002, id="umask-002"), pytest.param(0o022, id="umask-022")]


@contextmanager
def umask(mask: int) -> Iterator[None]:
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


def permissions(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode) & 0o777


def wrong_modes(root: Path, mask: int) -> dict[str, str]:
    """Every path under `root` (and `root`) whose permissions are not what the umask gives; links
    have none of their own."""
    wrong = {}
    for path in [root, *root.rglob("*")]:
        if path.is_symlink():
            continue
        wanted = (0o777 if path.is_dir() else 0o666) & ~mask
        if permissions(path) != wanted:
            wrong[str(path.relative_to(root))] = f"{permissions(path):o}, not {wanted:o}"
    return wrong


def private_weights(folder: Path) -> Path:
    """A real safetensors file, as safetensors writes it: 0600 whatever the umask."""
    import numpy as np
    from safetensors.numpy import save_file

    folder.mkdir(parents=True, exist_ok=True)
    save_file({"weight": np.zeros(2, dtype=np.float32)}, str(folder / "model.safetensors"))
    return folder / "model.safetensors"


@pytest.mark.parametrize("mask", UMASKS)
def test_follow_umask_gives_private_weights_and_folders_the_umasks_modes(tmp_path: Path, mask: int):
    import tempfile

    with umask(mask):
        assert current_umask() == mask
        root = tmp_path / "run"
        weights = private_weights(root / "artifact")
        assert permissions(weights) == 0o600  # what the finding was
        private_folder = Path(tempfile.mkdtemp(dir=root))  # 0700
        (private_folder / "notes.txt").write_text("x")
        os.chmod(private_folder / "notes.txt", 0o640)
        shared = root / "shared"
        shared.mkdir()
        os.chmod(shared, 0o2700)  # a folder that passes its group on (setgid)
        outside = tmp_path / "outside.txt"
        outside.write_text("not the run's")
        os.chmod(outside, 0o600)
        (root / "link").symlink_to(outside)

        follow_umask(root)
    assert wrong_modes(root, mask) == {}
    assert stat.S_IMODE(shared.stat().st_mode) == 0o2000 | (0o777 & ~mask), "setgid kept"
    assert permissions(outside) == 0o600, "a link's target outside the run is not the run's to change"


@pytest.mark.parametrize("mask", UMASKS)
def test_a_checkpoint_follows_the_umask_once_the_trainer_saved_it(tmp_path: Path, mask: int):
    from transformers import TrainerControl, TrainerState, TrainingArguments

    from peftbench.run.checkpoints import ShareCheckpoints

    with umask(mask):
        older = private_weights(tmp_path / "checkpoint-1")
        private_weights(tmp_path / "checkpoint-2")
        args = TrainingArguments(output_dir=str(tmp_path), use_cpu=True, report_to="none")
        ShareCheckpoints().on_save(args, TrainerState(global_step=2), TrainerControl())
    assert wrong_modes(tmp_path / "checkpoint-2", mask) == {}
    assert permissions(older) == 0o600, "only the checkpoint just saved"


@pytest.mark.parametrize("mask", UMASKS)
def test_a_packed_runs_own_log_follows_the_umask(tmp_path: Path, mask: int):
    """The packed task opens each run's log.txt for its forked process. The run fails at once (its
    model folder does not exist), which leaves a log, a spec and a result: quick, and real."""
    from peftbench.launch.array_task import PackTask

    spec = demo_run("lora")
    spec = spec.model_copy(update={"model": spec.model.model_copy(update={"source": str(tmp_path / "none")})})
    write_spec(tmp_path / "spec.json", spec)
    run_dir = tmp_path / "sweep" / spec.run_id
    with umask(mask):
        assert PackTask()([str(tmp_path / "spec.json")], [str(run_dir)]) == ["failed"]
    assert {p.name for p in run_dir.iterdir()} >= {"log.txt", "spec.json", "result.json"}
    assert wrong_modes(tmp_path / "sweep", mask) == {}


@pytest.mark.parametrize("mask", UMASKS)
def test_a_packed_runs_log_is_opened_with_the_umasks_mode(tmp_path: Path, mask: int):
    """Seen from inside the forked process while it runs, before run_one's last step gives the run
    folder the umask's modes (a process killed earlier never gets there). The one stand-in here is
    for run_one itself: it reads the mode of the file its stdout was opened on."""
    from types import SimpleNamespace

    from peftbench.core.paths import RunPaths
    from peftbench.launch.array_task import _child
    from peftbench.launch.run_pool import ForkPool

    seen = tmp_path / "seen"

    def run_one(spec: object, root: Path) -> SimpleNamespace:
        seen.write_text(f"{stat.S_IMODE(os.fstat(1).st_mode):o}")
        return SimpleNamespace(status="success")

    paths = RunPaths(tmp_path / "run")
    with umask(mask):
        [ended] = ForkPool(1).run([("run", _child(demo_run("lora"), paths, 1, run_one))])
    assert ended.exit_code == 0, ended.why
    assert seen.read_text() == f"{0o666 & ~mask:o}"
    assert permissions(paths.log) == 0o666 & ~mask


# Runs in a fresh interpreter under the shell's umask, as a user's job would: a full fine-tuning
# packed into an array task (launch.array_task.PackTask: a forked process whose log.txt the task
# opens) and a run_one of LoRA (checkpoints kept).
RUNS = """
import sys
from pathlib import Path

from peftbench.core.results import read_spec
from peftbench.launch.array_task import PackTask
from peftbench.run.one import run_one

lora, full = read_spec(Path(sys.argv[1])), Path(sys.argv[2])
sweep = Path(sys.argv[3])
packed = sweep / read_spec(full).run_id
# First, as a packed task does: it forks before torch has computed anything in the parent.
assert PackTask()([str(full)], [str(packed)]) == ["success"], (packed / "log.txt").read_text()[-3000:]
result = run_one(lora, sweep / lora.run_id)
assert result.status == "success", result.error
"""


@pytest.mark.slow
@pytest.mark.parametrize("mask", UMASKS)
def test_every_file_of_a_lora_and_a_packed_full_run_follows_the_umask(tmp_path: Path, mask: int):
    lora = demo_run("lora", max_steps=2, checkpoint_steps=2, keep_checkpoints=True)
    full = demo_run("full", max_steps=2)
    for name, spec in (("lora", lora), ("full", full)):
        write_spec(tmp_path / f"{name}.json", spec)
    sweep = tmp_path / "sweep"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "src"), str(REPO)])}
    specs = [str(tmp_path / "lora.json"), str(tmp_path / "full.json"), str(sweep)]
    done = subprocess.run(
        ["sh", "-c", f'umask {mask:03o} && exec "$@"', "sh", sys.executable, "-c", RUNS, *specs],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=500,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    lora_dir, full_dir = sweep / lora.run_id, sweep / full.run_id
    assert list(lora_dir.glob("artifact/*.safetensors"))
    assert list(lora_dir.glob("checkpoints/*/*.safetensors"))
    assert list(full_dir.glob("artifact/*.safetensors")) and (full_dir / "log.txt").is_file()
    assert wrong_modes(sweep, mask) == {}, "the runs, their log and the sweep's tokenization cache"
