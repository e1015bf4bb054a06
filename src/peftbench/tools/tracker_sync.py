"""`peftbench sync runs/<sweep>`: upload the sweep's offline W&B runs from a login node.

Compute nodes have no network, so runs write W&B offline (`run/tracking.py`), each in its own
folder, `runs/<sweep>/<run_id>/wandb/offline-run-*/`. `wandb sync` marks a run it has uploaded with
a `run-<id>.wandb.synced` file beside its log: those are left alone, so a second `sync` uploads
only what is new. `--dry-run` says what would be uploaded and uploads nothing.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from peftbench.core.errors import PeftbenchError

SYNCED = ".wandb.synced"  # what `wandb sync` leaves beside `run-<id>.wandb` once it has uploaded it


class SyncFailed(PeftbenchError):
    """The sweep folder is not there, wandb is not installed, or `wandb sync` failed."""


@dataclass(frozen=True)
class OfflineRun:
    folder: Path  # <run folder>/wandb/offline-run-<time>-<id>

    @property
    def run_dir(self) -> Path:
        return self.folder.parents[1]

    @property
    def uploaded(self) -> bool:
        return any(self.folder.glob(f"*{SYNCED}"))


@dataclass(frozen=True)
class SyncReport:
    to_upload: list[OfflineRun]  # uploaded now, or that would be with --dry-run
    already: int  # offline runs uploaded before
    dry_run: bool


def offline_runs(sweep_dir: Path) -> list[OfflineRun]:
    return [OfflineRun(p) for p in sorted(Path(sweep_dir).glob("*/wandb/offline-run-*")) if p.is_dir()]


def sync_sweep(sweep_dir: Path, dry_run: bool = False) -> SyncReport:
    """Upload every offline run of the sweep not uploaded yet (`wandb sync`, one call for them all)."""
    if not Path(sweep_dir).is_dir():
        raise SyncFailed(f"{sweep_dir}: no such sweep folder")
    found = offline_runs(sweep_dir)
    todo = [run for run in found if not run.uploaded]
    if todo and not dry_run:
        command = [wandb_command(), "sync", *(str(run.folder) for run in todo)]
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode != 0:
            said = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
            raise SyncFailed(f"wandb sync exited {done.returncode}: {said[0]}")
    return SyncReport(todo, len(found) - len(todo), dry_run)


def wandb_command() -> str:
    """The `wandb` command of this environment (beside its Python), else the one on PATH."""
    beside = Path(sys.executable).with_name("wandb")
    found = str(beside) if beside.is_file() else shutil.which("wandb")
    if found is None:
        raise SyncFailed("wandb is not installed here: pip install 'peftbench[wandb]' (docs/tracking.md)")
    return found
