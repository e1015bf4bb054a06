"""A run on a full, over-quota or read-only file system: its result ends with core's one line
(`CannotWrite`: the file, the file system, what to free), and room is made for that result.

A run meets a full disk where it writes most: saving its artifact (safetensors says only "No space
left on device (os error 28)", naming no file), a checkpoint, the tokenization cache. Any error
with ENOSPC, EDQUOT or EROFS anywhere in its chain counts; so does one that says nothing (torch's
"file write failed") while the run folder's file system has no byte free or is read-only.

result.json is small (a few KiB), yet a full file system may have no room even for that. So a run
that failed on a full disk first removes its own unfinished files: the artifact it was saving (a
run without a success result never has its artifact used), the checkpoints the Trainer had not
finished, stray temp files; and the result says what was removed. Finished checkpoints stay: once
space is freed, `resubmit` resumes from the last of them. Nothing outside the run's folder is touched.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

from peftbench.core.errors import CannotWrite, human_bytes
from peftbench.core.files import cannot_write, disk_error, file_system_of
from peftbench.core.paths import RunPaths
from peftbench.core.results import RunResult, write_result
from peftbench.run.accounting import folder_bytes
from peftbench.run.checkpoints import unfinished_checkpoints

WHAT_TO_FREE = (
    "finished runs' checkpoints/ (kept by keep_checkpoints) and the sweep's .cache/ are usually the "
    "largest; then `peftbench resubmit` trains this run again"
)


def disk_failure(err: BaseException, paths: RunPaths) -> CannotWrite | None:
    """The one line for a run that failed on a full, over-quota or read-only file system; None when
    its error is something else."""
    found = disk_error(err, paths.root)
    if found is not None:
        return cannot_write(Path(found.path), found.trouble, WHAT_TO_FREE)
    now = file_system_of(paths.root)
    if now.read_only or now.free_bytes == 0:  # an error that does not say why, on a disk with no room
        return cannot_write(paths.root, "read-only" if now.read_only else "full", WHAT_TO_FREE)
    return None


def write_last_result(paths: RunPaths, result: RunResult, failure: BaseException | None = None) -> RunResult:
    """Write the run's result.json. When `failure` was a full or read-only disk, or the disk refuses
    the result itself, a failed run's unfinished files are removed first (the result names them) and
    its error ends with the disk's line. Returns the result as written; one that cannot be written
    at all is logged (to the run's stderr) and returned, never raised."""
    line = None if failure is None else disk_failure(failure, paths)
    if line is None:
        try:
            write_result(paths.result, result)
            return result
        except CannotWrite as refused:
            line = disk_failure(refused, paths) or refused
    return _write_after_freeing(paths, result, line)


def _write_after_freeing(paths: RunPaths, result: RunResult, line: CannotWrite) -> RunResult:
    if result.status == "success":  # its artifact is finished: nothing of it is removed
        done = "Trained and evaluated, but result.json could not be written."
        failed, removed = result.model_copy(update={"status": "failed", "error": done}), []
    else:
        failed, removed = result, remove_unfinished(paths)
    note = [f"Removed this run's unfinished files to make room: {', '.join(removed)}."] if removed else []
    ready = _with_lines(failed, note, line)
    try:
        write_result(paths.result, ready)
    except CannotWrite as still:
        logging.getLogger("peftbench").error("%s: no result.json could be written: %s", paths.root, still)
    return ready


def _with_lines(result: RunResult, notes: list[str], line: CannotWrite | None) -> RunResult:
    """The result with `notes` and then the disk's line (the last line: `status` shows it) appended
    to its error."""
    if line is None and not notes:
        return result
    lines = [(result.error or "").rstrip("\n"), *notes, *([str(line)] if line is not None else [])]
    return result.model_copy(update={"error": "\n".join(part for part in lines if part)})


def remove_unfinished(paths: RunPaths) -> list[str]:
    """Remove what a failed run was writing and will write again: its artifact, the checkpoints the
    Trainer had not finished, temp files. Returns each as 'artifact/ (85.3 MiB)'."""
    candidates = [paths.artifact, *unfinished_checkpoints(paths.checkpoints), *paths.root.glob(".*.tmp")]
    removed = []
    for path in candidates:
        if not path.exists():
            continue
        folder = path.is_dir()
        size = folder_bytes(path) if folder else path.stat().st_size
        if folder:
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
        removed.append(f"{path.relative_to(paths.root)}{'/' if folder else ''} ({human_bytes(size)})")
    return removed
