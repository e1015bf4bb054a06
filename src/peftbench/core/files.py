"""Atomic writes: a temp file in the same folder, fsync, rename. A crash leaves old or new, never half."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO


def write_json_atomic(path: Path, payload: Any, durable: bool = True) -> None:
    """Write JSON to a temp file in the same folder, fsync, then rename over `path`.

    A crash at any point leaves either the old file or the new one, never half a file. `durable`
    False skips the fsync: still atomic for a crashed process, not against a power cut; for files
    that can be rebuilt (a spec.json is re-derived from the sweep), where fsync would dominate the
    cost of submitting thousands of runs.
    """

    def write(f: TextIO) -> None:
        json.dump(payload, f, indent=2, sort_keys=True)
        f.write("\n")

    write_text_atomic(path, write, durable)


def write_text_atomic(path: Path, write: Callable[[TextIO], None], durable: bool = True) -> None:
    """Call `write` on an open text file that atomically becomes `path` (see write_path_atomic)."""

    def to_file(tmp: Path) -> None:
        with open(tmp, "w", encoding="utf-8") as f:
            write(f)

    write_path_atomic(path, to_file, durable)


def write_path_atomic(path: Path, write: Callable[[Path], None], durable: bool = True) -> None:
    """Call `write(tmp)` on a temp path in `path`'s folder, fsync it (if durable), rename over `path`.

    For writers that want a path (parquet, csv) as well as text. On any failure the temp file is
    removed and `path` keeps its old content.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        write(tmp)
        if durable:
            fd = os.open(tmp, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
