"""Where peftbench's own checkout and lock are, and which commit it is (baked in inside the image)."""

from __future__ import annotations

import os
import subprocess
from functools import cache
from pathlib import Path

CHECKOUT = Path(__file__).resolve().parents[3]


@cache
def git_state(folder: Path = CHECKOUT) -> tuple[str | None, bool | None]:
    """(commit, dirty) of the checkout peftbench runs from, or (None, None) outside git."""
    try:
        commit = subprocess.run(
            ["git", "-C", str(folder), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout.strip()
        status = subprocess.run(
            ["git", "-C", str(folder), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return _baked_git_state()
    return commit, bool(status.strip())


def _baked_git_state() -> tuple[str | None, bool | None]:
    """The commit an image was built from (`PEFTBENCH_GIT_COMMIT`/`_DIRTY`, set by its %post)."""
    commit = os.environ.get("PEFTBENCH_GIT_COMMIT") or None
    dirty = os.environ.get("PEFTBENCH_GIT_DIRTY")
    return commit, (dirty == "true") if dirty in {"true", "false"} else None


def lock_path() -> Path:
    """The requirements.lock in force: `$PEFTBENCH_LOCK`, else the checkout's."""
    return Path(os.environ.get("PEFTBENCH_LOCK") or CHECKOUT / "requirements.lock")
