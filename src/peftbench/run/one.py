"""One run end to end: RunSpec in, result.json out. Knows nothing about schedulers.

`run_one` never raises for a failing run: whatever happens, it writes one result.json with an
explicit status (and the traceback when it failed) and returns the same record.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import time
import traceback
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

from peftbench.core.engines import DEEPSPEED_BACKENDS, SHARDED
from peftbench.core.files import follow_umask
from peftbench.core.judging import write_answers
from peftbench.core.paths import RunPaths
from peftbench.core.predictions import Prediction, write_predictions
from peftbench.core.results import Cost, RunResult, RunStatus, utc_now, write_spec
from peftbench.core.spec import RUN_SOURCE, ModelRef, RunSpec, TrainingSettings
from peftbench.methods import METHODS
from peftbench.models.loading import load_config, load_tokenizer, set_attention
from peftbench.run import story
from peftbench.run.accounting import (
    count_parameters,
    folder_bytes,
    gpus_of_run,
    peak_gpu_bytes,
    peak_rss_bytes,
    reset_gpu_peak,
)
from peftbench.run.checkpoints import ShareCheckpoints, last_complete_checkpoint
from peftbench.run.curve import validation_callbacks, validation_metrics
from peftbench.run.distributed import (
    ProcessPlace,
    announce_fsdp,
    engine_arguments,
    ensure_process_group_env,
    join_deepspeed_group,
    max_over_ranks,
    process_place,
    sum_over_ranks,
)
from peftbench.run.energy import CPU_RUN, PACKED_ENV, PACKED_NOTE, Energy, EnergyMeter
from peftbench.run.evaluation_oom import EvaluationOutOfMemory, HalvingEvaluation, is_out_of_memory
from peftbench.run.full_disk import write_last_result
from peftbench.run.incremental import resolve_model
from peftbench.run.progress import ProgressFile
from peftbench.run.provenance import collect_provenance
from peftbench.run.tracking import Tracking
from peftbench.run.trainer_args import resolved_precision, training_arguments
from peftbench.tasks import TASK_TYPES
from peftbench.tasks.base import logits_of
from peftbench.tasks.token_cache import TokenizationCache, cache_root


def run_one(spec: RunSpec, out_dir: Path) -> RunResult:
    """Train and evaluate one run in `out_dir`; always leaves exactly one result.json there."""
    story.start_the_log()
    paths = RunPaths(Path(out_dir))
    main_process = process_place().is_main  # in a multi-process run only rank 0 writes
    if main_process:
        paths.root.mkdir(parents=True, exist_ok=True)
        write_spec(paths.spec, spec)
    started_at, start = utc_now(), time.perf_counter()
    failure: Exception | None = None
    tracking = Tracking(spec, paths.root, main_process)  # the sweep's `tracking:`, on rank 0
    try:
        result = _train_and_evaluate(spec, paths, started_at, start, tracking)
    except Exception as err:  # every failure becomes a result, never a lost run
        failure = err
        result = RunResult(
            run_id=spec.run_id,
            status=failure_status(err),
            spec=spec,
            error=traceback.format_exc(),
            cost=Cost(wall_seconds=time.perf_counter() - start, peak_rss_bytes=peak_rss_bytes()),
            started_at=started_at,
            finished_at=utc_now(),
            training_finished=isinstance(err, EvaluationOutOfMemory),  # `resubmit` only evaluates
        )
    if main_process:  # a full or read-only disk: the result's last line says so (run/full_disk.py)
        result = write_last_result(paths, result, failure)
        follow_umask(paths.root)  # what writers made private (safetensors' 0600), as the umask asks
        story.tell_result(result)
        tracking.finish(result)
    return result


def failure_status(err: BaseException) -> RunStatus:
    """`oom` for host or GPU out-of-memory, `timeout` when the scheduler's requeues ran out (the
    launcher raises OutOfTime), else `failed`."""
    from peftbench.core.errors import OutOfTime
    from peftbench.core.search import Halted

    if isinstance(err, Halted):  # left its cell's top 1/eta at a rung: not a failure (run/halving.py)
        return "halted"
    if isinstance(err, OutOfTime):
        return "timeout"
    return "oom" if is_out_of_memory(err) else "failed"


@dataclass
class EngineSetup:
    """Where this process stands in the run, and the engine (DDP, FSDP, ZeRO) they share the work by."""

    backend: str
    place: ProcessPlace
    precision: str


@dataclass
class Trained:
    """What training left: the Trainer (its state, the model it holds) and the checkpoint resumed from."""

    trainer: Any
    model: Any
    train_metrics: dict[str, float]
    resumed_from: str | None
    trainable: int
    total: int

    @property
    def resumed_from_step(self) -> int | None:
        return int(Path(self.resumed_from).name.rsplit("-", 1)[-1]) if self.resumed_from else None


@dataclass
class Evaluated:
    validation: dict[str, float]
    test: dict[str, float]
    seconds: float
    halving: HalvingEvaluation  # the batch it finished with, and how often out-of-memory halved it


def _train_and_evaluate(
    spec: RunSpec, paths: RunPaths, started_at: str, start: float, tracking: Tracking
) -> RunResult:
    """The steps of one run: engine, data and model, training, evaluation, saving, accounting."""
    from transformers import set_seed

    set_seed(spec.seed)
    model_ref = resolve_model(spec.model, paths.root)  # a parent run's model (incremental tuning) made local
    metric = TASK_TYPES[spec.task.type].selection_metric(spec.task)
    engine, args = prepare_engine_before_loading(
        spec.training, model_ref, paths.checkpoints, metric, spec.seed
    )
    meter = _energy_meter(engine.place.world_size)
    tokenizer, data = tokenizer_and_data(spec, model_ref, paths)
    story.tell_data(data)
    trained = _train(spec, paths, args, model_ref, tokenizer, data, tracking)
    evaluated = _evaluate(spec, paths, trained.trainer, data, engine.place)
    _save(spec, paths, trained, engine)
    return RunResult(
        run_id=spec.run_id,
        status="success",
        spec=spec,
        validation=evaluated.validation,
        test=evaluated.test,
        best_step=_best_step(trained.trainer.state),
        resumed_from_step=trained.resumed_from_step,
        epochs_done=float(trained.trainer.state.epoch or 0.0),
        cost=_cost(
            paths, trained, evaluated, engine, data.train_tokens, time.perf_counter() - start, meter.stop()
        ),
        provenance=collect_provenance(spec.seed),
        started_at=started_at,
        finished_at=utc_now(),
    )


def prepare_engine_before_loading(
    training: TrainingSettings, model_ref: ModelRef, output_dir: Path, metric: str = "loss", seed: int = 0
) -> tuple[EngineSetup, Any]:
    """The engine joined and the Trainer arguments made, before the model loads, so that loading
    shards (models/sharded_loading.py): under ZeRO-3 the model is built partitioned (zero.Init) and
    streamed in one weight at a time; under FSDP only rank 0 reads the weights and the others build
    on the meta device. benchmarks/sharded_loading.py measures what each process holds meanwhile
    (docs/benchmarks.md). The caller keeps the arguments alive while loading: transformers holds
    their DeepSpeed config by a weak reference, and zero.Init is on only while it lives."""
    engine = _join_engine(training)
    args = training_arguments(
        training, metric, seed, output_dir, engine=_engine_arguments(engine, training, model_ref)
    )
    if engine.backend in DEEPSPEED_BACKENDS:
        join_deepspeed_group()
    if engine.backend == "fsdp":
        announce_fsdp()
    return engine, args


def _join_engine(training: TrainingSettings) -> EngineSetup:
    backend = training.engine
    if backend != "none":
        ensure_process_group_env()
    return EngineSetup(backend, process_place(), resolved_precision(training.precision))


def _engine_arguments(engine: EngineSetup, training: TrainingSettings, model_ref: ModelRef) -> dict[str, Any]:
    if engine.backend == "none":
        return {}
    config = load_config(model_ref)
    return engine_arguments(engine.backend, training, config, engine.place.world_size, engine.precision)


def _energy_meter(world_size: int) -> EnergyMeter:
    """The GPUs' energy counter over this run; in a packed task the task shares it out afterwards."""
    if os.environ.get(PACKED_ENV) and world_size == 1:  # NVML is the task's: never initialised here
        import torch

        return EnergyMeter(None, PACKED_NOTE if torch.cuda.is_available() else CPU_RUN)
    return EnergyMeter.for_this_process(world_size).start()


# Tokenizers and tokenized splits loaded before a packed task forks its runs (`preload`): every run
# of the same model and data settings reuses them instead of loading its own.
_PRELOADED: dict[str, tuple[Any, Any]] = {}
# Settings that change how a run trains but not its tokens: runs differing only here share data.
_NOT_DATA = {
    "learning_rate",
    "weight_decay",
    "warmup_ratio",
    "lr_scheduler",
    "epochs",
    "max_steps",
    "early_stopping_patience",
    "checkpoint_steps",
    "keep_checkpoints",
}


def _data_key(spec: RunSpec) -> str:
    training = spec.training.model_dump(mode="json", exclude=_NOT_DATA)
    return json.dumps([spec.model.model_dump(mode="json"), spec.task.model_dump(mode="json"), training])


def preload(specs: list[RunSpec], run_dirs: list[Path]) -> int:
    """Load the tokenizer and tokenized data of each distinct (model, task, data settings) once, to be
    reused by the runs forked after it (a packed array task). Returns how many sets were loaded.

    A run whose model comes from another run (incremental tuning) is left to load its own, and so is
    one whose data fails to load here: its own process fails with the error, in its own result."""
    story.quiet_progress_bars()  # the packed task's log (submitit's file) gets no bar fragments either
    for spec, run_dir in zip(specs, run_dirs, strict=True):
        key = _data_key(spec)
        if key in _PRELOADED or spec.model.source.startswith(RUN_SOURCE):
            continue
        try:
            tokenizer = load_tokenizer(spec.model)
            data = TASK_TYPES[spec.task.type].prepare_data(
                spec.task, tokenizer, spec.training, cache=_cache(spec, RunPaths(run_dir))
            )
        except Exception as err:
            logging.getLogger("peftbench").warning("%s: not preloaded (%s)", spec.run_id, err)
            continue
        _PRELOADED[key] = (tokenizer, data)
    return len(_PRELOADED)


def tokenizer_and_data(spec: RunSpec, model_ref: ModelRef, paths: RunPaths) -> tuple[Any, Any]:
    """The run's tokenizer and tokenized splits: preloaded by its packed task, else loaded here."""
    found = _PRELOADED.get(_data_key(spec))
    if found is not None:
        logging.getLogger("peftbench").info("tokenizer and data: reused from the packed task")
        return found
    tokenizer = load_tokenizer(model_ref)
    cache = _cache(spec, paths)
    data = TASK_TYPES[spec.task.type].prepare_data(spec.task, tokenizer, spec.training, cache=cache)
    return tokenizer, data


def _cache(spec: RunSpec, paths: RunPaths) -> TokenizationCache | None:
    if not spec.training.uses_tokenization_cache:
        return None
    return TokenizationCache(cache_root(paths.root))


def _train(
    spec: RunSpec, paths: RunPaths, args: Any, model_ref: ModelRef, tokenizer: Any, data: Any, *callbacks: Any
) -> Trained:
    """The method applied to the model with the task's head, trained (resuming from a checkpoint)."""
    from transformers import EarlyStoppingCallback, PrinterCallback, Trainer

    task_type, method = TASK_TYPES[spec.task.type], METHODS[spec.method]
    params = method.Params.model_validate(spec.params)
    story.tell_model(spec.model.name, str(model_ref.source))
    loaded = task_type.load_model(model_ref, spec.task, tokenizer, **method.loading_options(params))
    if spec.training.attention is not None:
        set_attention(loaded.model, spec.training.attention)
    model = method.prepare(loaded, params)
    trainable, total = count_parameters(model)
    story.tell_method(spec.method, trainable, total)

    def compute_metrics(prediction: Any) -> dict[str, float]:
        return task_type.compute_metrics(spec.task, logits_of(prediction), prediction.label_ids)

    patience = spec.training.early_stopping_patience
    curves = validation_callbacks(spec, paths, task_type.selection_metric(spec.task))
    trainer = Trainer(
        model=model,
        args=args,
        train_dataset=data.train,
        eval_dataset=data.validation,
        data_collator=data.collator,
        compute_metrics=compute_metrics,
        callbacks=[
            ProgressFile(paths.progress),
            story.TrainingStory(),
            *callbacks,  # the run's trackers
            StopWhenResumedAtTheEnd(),
            ShareCheckpoints(),
            *curves,
            *method.callbacks(model),
            *([EarlyStoppingCallback(patience)] if patience else []),
        ],
    )
    trainer.remove_callback(PrinterCallback)  # TrainingStory says the same, in words
    reset_gpu_peak()
    resume = last_complete_checkpoint(paths.checkpoints)
    train_metrics: dict[str, float] = {}
    # TrainingAlreadyDone: the checkpoint holds the final model; it is evaluated as it is.
    with contextlib.suppress(TrainingAlreadyDone):
        train_metrics = trainer.train(resume_from_checkpoint=resume).metrics if method.trains(model) else {}
    return Trained(trainer, model, train_metrics, resume, trainable, total)


def _evaluate(spec: RunSpec, paths: RunPaths, trainer: Any, data: Any, place: ProcessPlace) -> Evaluated:
    """Validation (reusing the final in-training evaluation when there was one) and test; test predictions."""
    task_type, halving = TASK_TYPES[spec.task.type], HalvingEvaluation(trainer)
    start = time.perf_counter()
    # Length grouping also reorders evaluation batches; predictions are written in dataset order.
    trainer.args.train_sampling_strategy = "sequential"
    validation, saved = _last_validation(trainer), []  # saved: answers a judge scores later (core/judging.py)
    wanted = (spec.task.metric, *task_type.evaluate_only_metrics(spec.task))
    if validation is None or any(m not in validation for m in wanted):  # text metrics: from `evaluate` only
        evaluated = halving.run(partial(task_type.evaluate, trainer, spec.task, data), "validation")
        validation, saved = evaluated.metrics, evaluated.answers
    test = halving.run(partial(task_type.evaluate, trainer, spec.task, data), "test")
    logging.getLogger("peftbench").info(
        "rank %d of %d: test %s", place.rank, place.world_size, json.dumps(test.metrics, sort_keys=True)
    )
    if place.is_main:
        write_predictions(
            paths.test_predictions,
            [
                Prediction(index=i, id=example_id, **{"text" if isinstance(p, str) else "label": p})
                for i, (example_id, p) in enumerate(zip(data.test_ids, test.predictions, strict=True))
            ],
        )
        write_answers(paths.answers, [*saved, *test.answers])  # none (not an instruction task): no file
    return Evaluated(validation, test.metrics, time.perf_counter() - start, halving)


def _save(spec: RunSpec, paths: RunPaths, trained: Trained, engine: EngineSetup) -> None:
    """The method's artifact (adapter or whole model); checkpoints go unless asked to stay.

    Sharded engines hold a slice of each weight per process: every rank takes part in gathering the
    whole state and rank 0 saves it. Unsharded runs save the model as it is.
    """
    trainer, gathered = trained.trainer, None
    if engine.backend in SHARDED:
        gathered = trainer.accelerator.get_state_dict(trainer.model_wrapped)
    if engine.place.is_main:
        METHODS[spec.method].save(trained.model, paths.artifact, state_dict=gathered)
        story.tell_saved(f"the {spec.method} artifact", paths.artifact)
        if not spec.training.keep_checkpoints:
            shutil.rmtree(paths.checkpoints, ignore_errors=True)


def _cost(
    paths: RunPaths,
    trained: Trained,
    evaluated: Evaluated,
    engine: EngineSetup,
    data_tokens: int,
    wall: float,
    energy: Energy,
) -> Cost:
    state, metrics, place = trained.trainer.state, trained.train_metrics, engine.place
    train_seconds = float(metrics.get("train_runtime", 0.0))
    tokens = int(state.num_input_tokens_seen or data_tokens * (state.epoch or 0))
    return Cost(
        wall_seconds=wall,
        train_seconds=train_seconds,
        eval_seconds=evaluated.seconds,
        eval_batch_size=evaluated.halving.batch_size,
        eval_oom_retries=evaluated.halving.retries,
        train_samples_per_second=float(metrics.get("train_samples_per_second", 0.0)),
        train_tokens_per_second=tokens / train_seconds if train_seconds else 0.0,
        train_tokens=tokens,
        peak_rss_bytes=max_over_ranks(peak_rss_bytes()),
        peak_gpu_bytes=max_over_ranks(peak_gpu_bytes()),
        gpu_hours=gpus_of_run(place.world_size) * wall / 3600,
        trainable_params=trained.trainable,
        total_params=trained.total,
        artifact_bytes=folder_bytes(paths.artifact) if place.is_main else 0,
        world_size=place.world_size,
        backend=engine.backend,
        energy_wh=sum_over_ranks(energy.wh),
        energy_note=energy.note,
    )


class TrainingAlreadyDone(Exception):
    """Raised inside Trainer.train when the checkpoint it resumed from is at the final step."""


class StopWhenResumedAtTheEnd(TrainerCallback):
    """Resuming from a checkpoint at the last step (the signal came after it, e.g. during the final
    evaluation), the Trainer would take one step more before checking max_steps. At train begin
    the checkpoint's weights, optimizer and state are loaded (by every engine): stop there."""

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if state.max_steps and state.global_step >= state.max_steps:
            raise TrainingAlreadyDone(f"checkpoint at step {state.global_step} of {state.max_steps}")


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
    return validation_metrics(last)


def _best_step(state: Any) -> int | None:
    if state.best_model_checkpoint:
        return int(Path(state.best_model_checkpoint).name.rsplit("-", 1)[-1])
    return int(state.global_step)
