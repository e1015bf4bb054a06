"""Experiment trackers, offline first: what a run reports to those its sweep names in `tracking:`.

Every tracker gets the same things under the same names: the run's name (model · task · method ·
point · seed), its spec as hyper-parameters, each logging step and evaluation while it trains,
and at the end the result's metrics and cost. A tracker that cannot be written (its package not
installed, its folder not writable) costs the run a warning in its log, never its result.

- tensorboard: event files in `<run>/tensorboard/<name>/`, so `tensorboard --logdir runs/<sweep>`
  shows every run; the spec as HParams, the result's numbers as the HParams metrics.
- wandb: offline unless WANDB_MODE says otherwise (compute nodes have no network): the offline run
  in `<run>/wandb/offline-run-*/`, project = the sweep, group = the cell, config = the spec,
  summary = the result's numbers; `peftbench sync` uploads it later from a login node.
- mlflow: a run in the sweep's file store, `runs/<sweep>/mlruns` (or `$MLFLOW_TRACKING_URI`):
  experiment = the sweep, run name as above, tags for the cell and run id, params = the spec,
  metrics = the steps and the result's numbers.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

from peftbench.core.results import RunResult
from peftbench.core.spec import RunSpec

LOG = logging.getLogger("peftbench")
TENSORBOARD_DIR = "tensorboard"


def run_name(spec: RunSpec) -> str:
    """`minilm-l6 · cola · lora · r=8 lr=0.0005 · seed 0`: what a tracker lists the run as."""
    point = " ".join(f"{k}={_short(v)}" for k, v in sorted(spec.params.items()) if _scalar(v))
    point = f"{point} lr={spec.training.learning_rate:g}".strip()
    return " · ".join(
        [spec.model.name.replace("/", "_"), spec.task.name, spec.label, point, f"seed {spec.seed}"]
    )


def _scalar(value: Any) -> bool:
    return isinstance(value, (str, int, float, bool))


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _short(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def hyperparameters(spec: RunSpec) -> dict[str, str | int | float | bool]:
    """The spec, flat: `model`, `task`, `method`, `label`, `seed`, `run_id`, `sweep`, `params.<name>`,
    `training.<name>` (set ones); lists and mappings as JSON text (trackers take scalars only)."""
    flat: dict[str, Any] = {"run_id": spec.run_id, "sweep": spec.sweep, "model": spec.model.name}
    flat |= {"task": spec.task.name, "method": spec.method, "label": spec.label, "seed": spec.seed}
    flat |= {f"params.{k}": v for k, v in spec.params.items()}
    flat |= {f"training.{k}": v for k, v in spec.training.model_dump(mode="json", exclude_none=True).items()}
    return {k: v if _scalar(v) else json.dumps(v, sort_keys=True) for k, v in flat.items()}


def result_numbers(result: RunResult) -> dict[str, float]:
    """`validation/<metric>`, `test/<metric>` and `cost/<field>`: the numbers of the result."""
    numbers = {f"validation/{k}": v for k, v in result.validation.items()}
    numbers |= {f"test/{k}": v for k, v in result.test.items()}
    cost = result.cost.model_dump() if result.cost is not None else {}
    numbers |= {
        f"cost/{k}": v for k, v in cost.items() if isinstance(v, (int, float)) and not isinstance(v, bool)
    }
    return {k: float(v) for k, v in numbers.items()}


def step_numbers(logs: dict[str, Any]) -> dict[str, float]:
    """A Trainer log as tracker names: `eval_accuracy` -> `eval/accuracy`, `loss` -> `train/loss`
    (the summary at the end: `train/train_loss`, the mean over training)."""
    numbers = {}
    for name, value in logs.items():
        if not _number(value) or name in {"epoch", "step"}:
            continue
        split, _, rest = name.partition("_")
        numbers[f"eval/{rest}" if split == "eval" else f"train/{name}"] = float(value)
    return numbers


@contextmanager
def _warned(tracker: str) -> Iterator[None]:
    """A tracker's failure is a line in the log; the run goes on."""
    try:
        yield
    except Exception as err:  # an import, a disk, a library's own error: never the run's
        LOG.warning("tracking %s: not written (%s: %s)", tracker, type(err).__name__, err)


class TensorBoardWriter:
    """Event files of one run, in `<run>/tensorboard/<run name>/`."""

    def __init__(self, spec: RunSpec, root: Path):
        from torch.utils.tensorboard import SummaryWriter

        self.spec = spec
        self.folder = Path(root) / TENSORBOARD_DIR / run_name(spec)
        self.writer = SummaryWriter(log_dir=str(self.folder))

    def log(self, step: int, numbers: dict[str, float]) -> None:
        for name, value in numbers.items():
            self.writer.add_scalar(name, value, step)
        self.writer.flush()

    def finish(self, result: RunResult, step: int) -> None:
        """The spec as HParams and the result's numbers as its metrics (TensorBoard's HParams tab)."""
        from torch.utils.tensorboard.summary import hparams

        numbers = result_numbers(result)
        for summary in hparams(hyperparameters(self.spec), numbers):
            self.writer.file_writer.add_summary(summary, step)
        self.log(step, numbers)
        self.writer.close()


def cell_name(spec: RunSpec) -> str:
    """`minilm-l6 · cola · lora`: the cell a run belongs to, every point and seed of it."""
    return " · ".join([spec.model.name, spec.task.name, spec.label])


class WandbWriter:
    """A W&B run, offline by default: written under `<run>/wandb/`, uploaded by `peftbench sync`."""

    def __init__(self, spec: RunSpec, root: Path):
        import wandb

        self.run = wandb.init(
            mode=os.environ.get("WANDB_MODE", "offline"),  # type: ignore[arg-type]
            dir=str(root),
            project=os.environ.get("WANDB_PROJECT", spec.sweep),
            group=cell_name(spec),
            name=run_name(spec),
            config=hyperparameters(spec),
            reinit="create_new",
            settings=wandb.Settings(silent=True, console="off"),
        )

    def log(self, step: int, numbers: dict[str, float]) -> None:
        self.run.log(numbers, step=step)

    def finish(self, result: RunResult, step: int) -> None:
        import wandb

        self.run.summary.update({**result_numbers(result), "status": result.status})
        self.run.finish(exit_code=0 if result.status == "success" else 1)
        wandb.teardown()  # the service flushes and closes the run's files now, not at exit


MLFLOW_STORE = "mlruns"  # the sweep's own MLflow file store: runs/<sweep>/mlruns


class MlflowWriter:
    """An MLflow run, in the sweep's file store unless $MLFLOW_TRACKING_URI names another store."""

    def __init__(self, spec: RunSpec, root: Path):
        from mlflow import MlflowClient
        from mlflow.entities import Param

        os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")  # MLflow 3 keeps it, in maintenance
        store = os.environ.get("MLFLOW_TRACKING_URI") or (Path(root).resolve().parent / MLFLOW_STORE).as_uri()
        self.client = MlflowClient(store)
        experiment = _experiment_id(self.client, os.environ.get("MLFLOW_EXPERIMENT_NAME", spec.sweep))
        tags = {"peftbench.cell": cell_name(spec), "peftbench.run_id": spec.run_id}
        self.run_id = self.client.create_run(experiment, run_name=run_name(spec), tags=tags).info.run_id
        params = [Param(name, str(value)) for name, value in hyperparameters(spec).items()]
        for start in range(0, len(params), 100):  # MLflow takes at most 100 params a batch
            self.client.log_batch(self.run_id, params=params[start : start + 100])

    def log(self, step: int, numbers: dict[str, float]) -> None:
        import time

        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        self.client.log_batch(self.run_id, metrics=[Metric(k, v, now, step) for k, v in numbers.items()])

    def finish(self, result: RunResult, step: int) -> None:
        self.log(step, result_numbers(result))
        self.client.set_tag(self.run_id, "peftbench.status", result.status)
        self.client.set_terminated(self.run_id, "FINISHED" if result.status == "success" else "FAILED")


def _experiment_id(client: Any, name: str) -> str:
    """The experiment's id, made by the first run of the sweep that reports (another may race it)."""
    found = client.get_experiment_by_name(name)
    if found is not None:
        return str(found.experiment_id)
    try:
        return str(client.create_experiment(name))
    except Exception:  # made meanwhile by another run of the sweep
        return str(client.get_experiment_by_name(name).experiment_id)


WRITERS = {"tensorboard": TensorBoardWriter, "wandb": WandbWriter, "mlflow": MlflowWriter}


class Tracking(TrainerCallback):
    """The run's trackers while it trains (the main process only) and when its result is known."""

    def __init__(self, spec: RunSpec, root: Path, main_process: bool = True):
        self.writers: dict[str, Any] = {}
        for tracker in spec.tracking if main_process else []:
            with _warned(tracker):
                self.writers[tracker] = WRITERS[tracker](spec, root)
        self.step = 0

    def on_log(self, args: Any, state: Any, control: Any, logs: Any = None, **kwargs: Any) -> None:
        self.step = int(state.global_step)
        self._each("log", self.step, step_numbers(logs or {}))

    def finish(self, result: RunResult) -> None:
        self._each("finish", result, self.step)

    def _each(self, call: str, *args: Any) -> None:
        for tracker, writer in list(self.writers.items()):
            with _warned(tracker):
                getattr(writer, call)(*args)
