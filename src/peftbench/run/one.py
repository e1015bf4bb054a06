"""One run end to end: RunSpec in, result.json out. Knows nothing about schedulers.

`run_one` never raises for a failing run: whatever happens, it writes one result.json with an
explicit status (and the traceback when it failed) and returns the same record.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
import traceback
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

from peftbench.core.engines import DEEPSPEED_BACKENDS, SHARDED
from peftbench.core.files import write_json_atomic
from peftbench.core.paths import RunPaths
from peftbench.core.predictions import Prediction, write_predictions
from peftbench.core.results import Cost, RunResult, RunStatus, utc_now, write_result, write_spec
from peftbench.core.spec import RunSpec
from peftbench.methods import METHODS
from peftbench.models.loading import load_tokenizer, resolve_model, set_attention
from peftbench.run.accounting import (
    count_parameters,
    folder_bytes,
    gpus_of_run,
    peak_gpu_bytes,
    peak_rss_bytes,
    reset_gpu_peak,
)
from peftbench.run.distributed import (
    engine_arguments,
    ensure_process_group_env,
    join_deepspeed_group,
    max_over_ranks,
    process_place,
)
from peftbench.run.provenance import collect_provenance
from peftbench.run.trainer_args import _model_config, resolved_precision, training_arguments
from peftbench.tasks import TASK_TYPES
from peftbench.tasks.base import logits_of
from peftbench.tasks.token_cache import TokenizationCache, cache_root


def run_one(spec: RunSpec, out_dir: Path) -> RunResult:
    """Train and evaluate one run in `out_dir`; always leaves exactly one result.json there."""
    _log_to_stderr()
    paths = RunPaths(Path(out_dir))
    main_process = process_place().is_main  # in a multi-process run only rank 0 writes
    if main_process:
        paths.root.mkdir(parents=True, exist_ok=True)
        write_spec(paths.spec, spec)
    started_at, start = utc_now(), time.perf_counter()
    try:
        result = _train_and_evaluate(spec, paths, started_at, start)
    except Exception as err:  # every failure becomes a result, never a lost run
        result = RunResult(
            run_id=spec.run_id,
            status=failure_status(err),
            spec=spec,
            error=traceback.format_exc(),
            cost=Cost(wall_seconds=time.perf_counter() - start, peak_rss_bytes=peak_rss_bytes()),
            started_at=started_at,
            finished_at=utc_now(),
        )
    if main_process:
        write_result(paths.result, result)
    return result


def _log_to_stderr() -> None:
    """peftbench's own log lines (INFO and up, e.g. tokenization cache hits) go to the run's log."""
    logger = logging.getLogger("peftbench")
    if not logger.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("[peftbench] %(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)


def failure_status(err: BaseException) -> RunStatus:
    """`oom` for host or GPU out-of-memory, `timeout` when the scheduler's requeues ran out, else `failed`."""
    if isinstance(err, MemoryError) or type(err).__name__ == "OutOfMemoryError":
        return "oom"
    if type(err).__name__ == "UncompletedJobError" and "timed-out" in str(err):
        return "timeout"
    return "oom" if "out of memory" in str(err).lower() else "failed"


def _train_and_evaluate(spec: RunSpec, paths: RunPaths, started_at: str, start: float) -> RunResult:
    from transformers import EarlyStoppingCallback, Trainer, set_seed
    from transformers.trainer_utils import get_last_checkpoint

    set_seed(spec.seed)
    task_type = TASK_TYPES[spec.task.type]
    method = METHODS[spec.method]
    model_ref = resolve_model(spec.model, paths.root)  # a parent run's model (incremental tuning) made local
    backend = spec.training.distributed or "none"
    if backend != "none":
        ensure_process_group_env()
    place = process_place()
    precision = resolved_precision(spec.training.precision)
    # Before the model loads: under ZeRO-3, from_pretrained then partitions weights as it reads them.
    args = training_arguments(
        spec.training,
        task_type.selection_metric(spec.task),
        spec.seed,
        paths.checkpoints,
        engine=engine_arguments(backend, spec.training, _model_config(model_ref), place.world_size, precision)
        if backend != "none"
        else {},
    )
    if backend in DEEPSPEED_BACKENDS:
        join_deepspeed_group()
    tokenizer = load_tokenizer(model_ref)
    use_cache = spec.training.tokenization_cache is not False
    cache = TokenizationCache(cache_root(paths.root)) if use_cache else None
    data = task_type.prepare_data(spec.task, tokenizer, spec.training, cache=cache)
    params = method.Params.model_validate(spec.params)
    loaded = task_type.load_model(model_ref, spec.task, tokenizer, **method.loading_options(params))
    if spec.training.attention is not None:
        set_attention(loaded.model, spec.training.attention)
    model = method.prepare(loaded, params)
    trainable, total = count_parameters(model)

    def compute_metrics(prediction: Any) -> dict[str, float]:
        return task_type.compute_metrics(spec.task, logits_of(prediction), prediction.label_ids)

    patience = spec.training.early_stopping_patience
    trainer = Trainer(
        model=model,
        args=args,
        train_dataset=data.train,
        eval_dataset=data.validation,
        data_collator=data.collator,
        compute_metrics=compute_metrics,
        callbacks=[
            ProgressFile(paths.progress),
            *method.callbacks(model),
            *([EarlyStoppingCallback(patience)] if patience else []),
        ],
    )
    reset_gpu_peak()
    resume = get_last_checkpoint(str(paths.checkpoints)) if paths.checkpoints.is_dir() else None
    train_metrics = trainer.train(resume_from_checkpoint=resume).metrics if method.trains(model) else {}

    eval_start = time.perf_counter()
    # Length grouping also reorders evaluation batches; predictions are written in dataset order.
    trainer.args.train_sampling_strategy = "sequential"
    validation = _last_validation(trainer)
    if validation is None or spec.task.metric not in validation:  # text metrics come from `evaluate` only
        validation = task_type.evaluate(trainer, spec.task, data, "validation").metrics
    test_eval = task_type.evaluate(trainer, spec.task, data, "test")
    logging.getLogger("peftbench").info(
        "rank %d of %d: test %s", place.rank, place.world_size, json.dumps(test_eval.metrics, sort_keys=True)
    )
    if place.is_main:
        write_predictions(
            paths.test_predictions,
            [
                Prediction(index=i, id=example_id, **{"text" if isinstance(p, str) else "label": p})
                for i, (example_id, p) in enumerate(zip(data.test_ids, test_eval.predictions, strict=True))
            ],
        )
    eval_seconds = time.perf_counter() - eval_start

    # Sharded engines hold a slice of each weight per process: gather the whole state (all ranks
    # take part) and let rank 0 save it. Unsharded runs save the model as it is.
    gathered = trainer.accelerator.get_state_dict(trainer.model_wrapped) if backend in SHARDED else None
    if place.is_main:
        method.save(model, paths.artifact, state_dict=gathered)
        if not spec.training.keep_checkpoints:
            shutil.rmtree(paths.checkpoints, ignore_errors=True)

    state = trainer.state
    train_seconds = float(train_metrics.get("train_runtime", 0.0))
    tokens = int(state.num_input_tokens_seen or data.train_tokens * (state.epoch or 0))
    wall = time.perf_counter() - start
    return RunResult(
        run_id=spec.run_id,
        status="success",
        spec=spec,
        validation=validation,
        test=test_eval.metrics,
        best_step=_best_step(state),
        resumed_from_step=int(Path(resume).name.rsplit("-", 1)[-1]) if resume else None,
        epochs_done=float(state.epoch or 0.0),
        cost=Cost(
            wall_seconds=wall,
            train_seconds=train_seconds,
            eval_seconds=eval_seconds,
            train_samples_per_second=float(train_metrics.get("train_samples_per_second", 0.0)),
            train_tokens_per_second=tokens / train_seconds if train_seconds else 0.0,
            train_tokens=tokens,
            peak_rss_bytes=max_over_ranks(peak_rss_bytes()),
            peak_gpu_bytes=max_over_ranks(peak_gpu_bytes()),
            gpu_hours=gpus_of_run(place.world_size) * wall / 3600,
            trainable_params=trainable,
            total_params=total,
            artifact_bytes=folder_bytes(paths.artifact) if place.is_main else 0,
            world_size=place.world_size,
            backend=backend,
        ),
        provenance=collect_provenance(spec.seed),
        started_at=started_at,
        finished_at=utc_now(),
    )


class ProgressFile(TrainerCallback):
    """Keeps `progress.json` (step, max_steps) current, for the launcher's progress display."""

    def __init__(self, path: Path):
        self.path = path

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if state.global_step % 5 == 0 or state.global_step == state.max_steps:
            write_json_atomic(self.path, {"step": state.global_step, "max_steps": state.max_steps})


def _last_validation(trainer: Any) -> dict[str, float] | None:
    """The validation metrics the Trainer logged at its final step, if it evaluated the final model.

    With eval_strategy 'epoch' the last epoch ends with an evaluation of the model we keep; running
    it again would double the evaluation cost. Not so when the best checkpoint was reloaded.
    """
    state = trainer.state
    if trainer.args.load_best_model_at_end and state.best_model_checkpoint:
        return None
    last = next((entry for entry in reversed(state.log_history) if "eval_loss" in entry), None)
    if last is None or last.get("step") != state.global_step:
        return None
    metrics = {k.removeprefix("eval_"): float(v) for k, v in last.items() if k.startswith("eval_")}
    return {k: v for k, v in metrics.items() if not k.endswith(("runtime", "per_second"))}


def _best_step(state: Any) -> int | None:
    if state.best_model_checkpoint:
        return int(Path(state.best_model_checkpoint).name.rsplit("-", 1)[-1])
    return int(state.global_step)
