"""The result record of one run, an atomic write and a tolerant read.

Every run ends in exactly one `result.json`. A run folder without a `success` result is
unfinished, whatever a scheduler says.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from peftbench.core.errors import UnreadableFile
from peftbench.core.files import write_json_atomic
from peftbench.core.paths import RunPaths
from peftbench.core.spec import RunSpec

RunStatus = Literal["success", "failed", "oom", "timeout", "killed", "interrupted", "halted"]
FINAL_STATUSES = ("success", "halted")  # a run that ended so is not run again (halted: core/search.py)


SCHEMA_VERSION = 1


class Cost(BaseModel):
    """What the run cost. Seconds are wall-clock; memory peaks are in bytes."""

    model_config = ConfigDict(extra="forbid")

    wall_seconds: float = Field(
        description="From the start of run_one to the result, model loading included."
    )
    train_seconds: float = Field(0.0, description="Time inside Trainer.train().")
    eval_seconds: float = Field(0.0, description="Time of the final validation and test evaluation.")
    eval_batch_size: int | None = Field(
        None,
        description="Evaluation batch the run finished with: eval_batch_size, halved after out-of-memory.",
    )
    eval_oom_retries: int = Field(0, description="Times out-of-memory halved the evaluation batch.")
    train_samples_per_second: float = Field(0.0, description="Training examples processed per second.")
    train_tokens_per_second: float = Field(
        0.0, description="Non-padding training tokens per second, summed over ranks."
    )
    train_tokens: int = Field(0, description="Non-padding tokens seen in training (all epochs).")
    peak_rss_bytes: int = Field(
        0, description="Peak resident memory of the process that ran it (max over ranks)."
    )
    peak_gpu_bytes: int | None = Field(
        None, description="torch.cuda.max_memory_allocated, max over ranks; None on CPU."
    )
    gpu_hours: float = Field(0.0, description="GPUs × wall hours (0 on CPU).")
    trainable_params: int = Field(0, description="Parameters the optimizer updates (task head included).")
    total_params: int = Field(0, description="All parameters of the trained model.")
    artifact_bytes: int = Field(0, description="Bytes on disk of what was saved (adapter, or whole model).")
    world_size: int = Field(1, description="Processes that trained the run together (one per GPU).")
    backend: str = Field("none", description="Engine across them: none, ddp, fsdp, zero2, zero3, ...")
    energy_wh: float | None = Field(
        None,
        description=(
            "GPU energy in Wh from NVML's total-energy counter, summed over GPUs and ranks; a packed run's "
            "share is an estimate (docs/packing.md). None where no counter was read: energy_note says why."
        ),
    )
    energy_note: str | None = Field(None, description="How energy_wh was measured, or why it is empty.")


class Provenance(BaseModel):
    """Where and with what the run was made."""

    model_config = ConfigDict(extra="forbid")

    peftbench_version: str
    packages: dict[str, str] = Field(description="Versions of torch, transformers, peft, ...")
    python: str
    git_commit: str | None = Field(None, description="Commit of the peftbench checkout, if any.")
    git_dirty: bool | None = Field(None, description="Uncommitted changes in that checkout.")
    lock_sha256: str | None = Field(None, description="sha256 of requirements.lock, if found.")
    image: str | None = Field(None, description="Path of the Apptainer image the run ran in, if any.")
    image_sha256: str | None = Field(
        None, description="sha256 of that image file (hashed once per sweep by the launcher)."
    )
    hostname: str
    hosts: list[str] = Field(
        default_factory=list,
        description="Every process's host, in rank order (one entry per process, over all nodes).",
    )
    device: str = Field(description="'cpu' or the CUDA device name.")
    torch_threads: int
    slurm_job_id: str | None = None
    seed: int


class RunResult(BaseModel):
    """The one record a run leaves. `status` says whether the metrics mean anything."""

    model_config = ConfigDict(extra="forbid")

    schema_version: int = SCHEMA_VERSION
    run_id: str
    status: RunStatus
    spec: RunSpec
    validation: dict[str, float] = Field(default_factory=dict, description="Metrics on validation.")
    test: dict[str, float] = Field(default_factory=dict, description="Metrics on test.")
    best_step: int | None = Field(
        None, description="Step of the model evaluated (the best, with early stopping)."
    )
    epochs_done: float = 0.0
    resumed_from_step: int | None = Field(None, description="Checkpoint step a requeued run resumed from.")
    cost: Cost | None = None
    provenance: Provenance | None = None
    error: str | None = Field(None, description="Traceback or reason when status is not success.")
    training_finished: bool = Field(
        False, description="Failed after training, in evaluation: `resubmit` evaluates its final checkpoint."
    )
    started_at: str = Field(description="ISO 8601 UTC.")
    finished_at: str = Field(description="ISO 8601 UTC.")


def utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def write_result(path: Path, result: RunResult) -> None:
    write_json_atomic(path, result.model_dump(mode="json"))


def write_spec(path: Path, spec: RunSpec) -> None:
    write_json_atomic(path, {"run_id": spec.run_id, **spec.model_dump(mode="json")}, durable=False)


class UnreadableSpec(UnreadableFile, ValueError):
    """A spec.json that is missing, not JSON or not a RunSpec; the message names the file and why."""


def read_spec(path: Path) -> RunSpec:
    """Read a spec.json; anything wrong with it raises UnreadableSpec naming the file."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as err:
        raise UnreadableSpec(f"{path}: {err.strerror or err}.") from err
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise UnreadableSpec(f"{path}: not JSON: {err}.") from err
    if not isinstance(data, dict):
        raise UnreadableSpec(f"{path}: expected a JSON object (a run's spec), got {type(data).__name__}.")
    data.pop("run_id", None)
    try:
        return RunSpec.model_validate(data)
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "<top level>"
        raise UnreadableSpec(f"{path}: {where}: {first['msg']} ({err.error_count()} problem(s)).") from err


class UnreadableResult(UnreadableFile):
    """A result.json that is not JSON or not a RunResult; the message names the file and why."""


def read_result(path: Path) -> RunResult:
    """Read a result.json; anything wrong with it raises UnreadableResult naming the file."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return RunResult.model_validate(data)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise UnreadableResult(f"{path}: {err}") from err
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise UnreadableResult(f"{path}: {where}: {first['msg']} ({err.error_count()} problems)") from err


def has_final_result(paths: RunPaths) -> bool:
    """Whether this run ended for good: success, or halted by successive halving."""
    try:
        return paths.result.is_file() and read_result(paths.result).status in FINAL_STATUSES
    except UnreadableResult:
        return False


def has_success(paths: RunPaths) -> bool:
    """Whether this run already finished successfully (an unreadable result counts as not)."""
    if not paths.result.is_file():
        return False
    try:
        return read_result(paths.result).status == "success"
    except UnreadableResult:
        return False
