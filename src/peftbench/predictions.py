"""Per-example test predictions of one run: `test_predictions.jsonl`, beside its result.json.

One JSON object per line, one line per test example, in the order the task's source yields the
test split:

    {"index": 0, "id": 17, "label": 1}

- `index`: 0-based position of the example in the test split.
- `id`: the example's own id from the data (its `idx` or `id` column) when the data has one, else
  null. SloBench matches predictions to its reference by this id; HuLU by position.
- `label`: the predicted class, as an index into the task's `labels`.

Leaderboards need the whole test split, so a run cut with `max_eval_samples` cannot be submitted.
Written atomically (temp file + rename), like result.json.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

PREDICTIONS_FILE = "test_predictions.jsonl"


class Prediction(BaseModel):
    """The predicted class of one test example."""

    model_config = ConfigDict(extra="forbid")

    index: int = Field(ge=0, description="0-based position in the test split.")
    id: int | str | None = Field(None, description="The example's own id in the data, if it has one.")
    label: int = Field(ge=0, description="Predicted class: an index into the task's labels.")


class UnreadablePredictions(Exception):
    """A predictions file that is missing, not JSON lines, or not Predictions; names file and line."""


def predictions_path(run_dir: Path) -> Path:
    from peftbench.results import RunPaths

    return RunPaths(Path(run_dir)).test_predictions


def write_predictions(path: Path, predictions: Iterable[Prediction]) -> None:
    """Write one JSON line per prediction to a temp file beside `path`, fsync, rename over `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            for p in predictions:
                f.write(json.dumps(p.model_dump(), ensure_ascii=False) + "\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_predictions(path: Path) -> list[Prediction]:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as err:
        raise UnreadablePredictions(f"{path}: {err.strerror or err}") from err
    predictions = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            predictions.append(Prediction.model_validate(json.loads(line)))
        except (json.JSONDecodeError, ValidationError) as err:
            raise UnreadablePredictions(f"{path}:{number}: {err}") from err
    return predictions
