"""Per-example test predictions of one run: `test_predictions.jsonl`, beside its result.json.

One JSON object per line, one line per test example, in the order the task's source yields the
test split:

    {"index": 0, "id": 17, "label": 1}
    {"index": 0, "id": "a3", "text": "The generated summary."}

- `index`: 0-based position of the example in the test split.
- `id`: the example's own id from the data (its `idx` or `id` column) when the data has one, else
  null. SloBench matches predictions to its reference by this id; HuLU by position.
- `label`: the predicted class, as an index into the task's `labels` (classification, multiple
  choice: the chosen choice's index; token tasks: absent).
- `text`: the generated text (generation and instruction tasks); token tasks: the predicted tag of
  each word, space-separated.

Leaderboards need the whole test split, so a run cut with `max_eval_samples` cannot be submitted.
Written atomically (temp file + rename), like result.json.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from peftbench.core.errors import UnreadableFile
from peftbench.core.json_lines import read_json_lines, write_json_lines
from peftbench.core.paths import RunPaths

PREDICTIONS_FILE = "test_predictions.jsonl"


class Prediction(BaseModel):
    """The prediction for one test example: a class index or a generated text."""

    model_config = ConfigDict(extra="forbid")

    index: int = Field(ge=0, description="0-based position in the test split.")
    id: int | str | None = Field(None, description="The example's own id in the data, if it has one.")
    label: int | None = Field(None, ge=0, description="Predicted class: an index into the task's labels.")
    text: str | None = Field(None, description="Generated text, for tasks that generate.")


class UnreadablePredictions(UnreadableFile):
    """A predictions file that is missing, not JSON lines, or not Predictions; names file and line."""


def predictions_path(run_dir: Path) -> Path:
    return RunPaths(Path(run_dir)).test_predictions


def write_predictions(path: Path, predictions: Iterable[Prediction]) -> None:
    """Write one JSON line per prediction atomically (temp file beside `path`, fsync, rename)."""
    write_json_lines(path, (_record(p) for p in predictions))


def _record(prediction: Prediction) -> dict[str, object]:
    """A prediction holds a label or a text: the other is left out of its line, not written as null."""
    return prediction.model_dump(exclude={k for k in ("label", "text") if getattr(prediction, k) is None})


def read_predictions(path: Path) -> list[Prediction]:
    return read_json_lines(path, Prediction, UnreadablePredictions)
