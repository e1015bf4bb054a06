"""Incremental tuning: a run that starts from the model another run of the same sweep produced.

The sweep gives such a child run the model source `run:<parent run id>` (so its run id follows its
parent's settings); a child of a searched block starts from its parent cell's winner, which its
launcher finds when it starts (core/search.py). When the child starts, the parent's artifact is
loaded onto a fresh base, merged into plain weights (a peft adapter through `merge_and_unload`),
stripped of the parent's task head and saved in the child's own folder; the child loads its base
model from there and gets a new head for its own task.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from peftbench.core.errors import RunCannotStart
from peftbench.core.paths import RunPaths
from peftbench.core.results import UnreadableResult, read_result, read_spec
from peftbench.core.search import started_from
from peftbench.core.spec import RUN_SOURCE, WINNER_SOURCE, ModelRef
from peftbench.methods import METHODS
from peftbench.models.loading import load_tokenizer
from peftbench.tasks import TASK_TYPES


def resolve_model(ref: ModelRef, run_dir: Path) -> ModelRef:
    """`ref` made loadable from `run_dir`: a `run:<id>` source becomes that run's model, merged.

    The parent's folder is beside `run_dir` (both are in the sweep's folder); the merged model is
    saved in `run_dir` (`RunPaths.parent_model`). Any other source is returned as it is.
    """
    if not ref.source.startswith(RUN_SOURCE):
        return ref
    parent_dir = Path(run_dir).parent / _parent_id(ref, Path(run_dir))
    return ref.model_copy(update={"source": str(parent_model(parent_dir, run_dir))})


def _parent_id(ref: ModelRef, run_dir: Path) -> str:
    """The parent's run id: in the source, or for a child of a searched block, the winner its launcher
    found when it started (core/search.py: `resolve_parent`)."""
    if not ref.source.startswith(WINNER_SOURCE):
        return ref.source.removeprefix(RUN_SOURCE)
    found = started_from(RunPaths(run_dir))
    if found is None:
        raise RunCannotStart(
            f"Run {run_dir.name} starts from the winner of a searched block, which its launcher finds "
            f"when it starts ({RunPaths(run_dir).started_from} is missing): start it with `peftbench sweep` "
            "or `resubmit`."
        )
    return found


def parent_model(parent_dir: Path, run_dir: Path) -> Path:
    """The parent run's trained model as a folder transformers loads: `RunPaths(run_dir).parent_model`.

    Built once; later calls (and other processes of the same run) find it in place.
    """
    target = RunPaths(Path(run_dir)).parent_model
    if target.is_dir():
        return target
    parent = RunPaths(Path(parent_dir))
    _require_success(parent)
    building = target.with_name(f"{target.name}.{os.getpid()}.tmp")
    shutil.rmtree(building, ignore_errors=True)
    _save_merged(parent, building)
    try:
        building.rename(target)
    except OSError:  # another process of this run finished first: keep its copy
        shutil.rmtree(building, ignore_errors=True)
    return target


def _require_success(parent: RunPaths) -> None:
    """Raise RunCannotStart unless the parent run ended with a `success` result."""
    try:
        status = read_result(parent.result).status
    except UnreadableResult as err:
        raise RunCannotStart(
            f"Parent run {parent.root.name} has no readable result ({err}); run it first."
        ) from err
    if status != "success":
        raise RunCannotStart(f"Parent run {parent.root.name} ended with status {status!r} ({parent.result}).")


def _save_merged(parent: RunPaths, folder: Path) -> None:
    """The parent's base model with its trained method merged in, and its tokenizer, into `folder`;
    without the task head (the child's task builds its own)."""
    spec = read_spec(parent.spec)
    method = METHODS[spec.method]
    ref = resolve_model(spec.model, parent.root)  # a parent that is itself a child
    tokenizer = load_tokenizer(ref)
    # A full-precision base even for a QLoRA parent: the LoRA update merges into unquantized weights.
    loaded = TASK_TYPES[spec.task.type].load_model(ref, spec.task, tokenizer)
    model = method.merged(method.load(loaded, parent.artifact))
    head = tuple(f"{m}." for m in loaded.head_modules)
    weights = {k: v for k, v in model.state_dict().items() if not k.startswith(head)}
    model.save_pretrained(folder, state_dict=weights)
    tokenizer.save_pretrained(folder)
