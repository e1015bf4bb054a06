"""test_predictions.jsonl: the record a run leaves for leaderboard submissions."""

from __future__ import annotations

from pathlib import Path

import pytest

from peftbench.core.predictions import (
    PREDICTIONS_FILE,
    Prediction,
    UnreadablePredictions,
    predictions_path,
    read_predictions,
    write_predictions,
)


def test_round_trip_one_line_per_example(tmp_path: Path):
    rows = [
        Prediction(index=0, id=17, label=1),
        Prediction(index=1, id="q-2", label=0),
        Prediction(index=2, label=2),
    ]
    path = predictions_path(tmp_path)
    write_predictions(path, rows)
    assert path.name == PREDICTIONS_FILE
    assert path.read_text().splitlines()[0] == '{"index": 0, "id": 17, "label": 1}'
    assert read_predictions(path) == rows
    assert [p.name for p in tmp_path.iterdir()] == [PREDICTIONS_FILE]  # no temp file left behind


@pytest.mark.parametrize(
    ("content", "where"),
    [('{"index": 0, "label": 1}\n{"index": 1, "label": -1}\n', ":2:"), ("{not json\n", ":1:")],
)
def test_bad_lines_name_the_file_and_line(tmp_path: Path, content: str, where: str):
    path = tmp_path / PREDICTIONS_FILE
    path.write_text(content)
    with pytest.raises(UnreadablePredictions, match=f"{PREDICTIONS_FILE}{where}"):
        read_predictions(path)
    with pytest.raises(UnreadablePredictions, match="No such file"):
        read_predictions(tmp_path / "absent.jsonl")
