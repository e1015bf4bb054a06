"""core/json_lines.py: a run's JSON Lines files, written all or none and read back with the line at fault."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import BaseModel

from peftbench.core.errors import UnreadableFile
from peftbench.core.json_lines import read_json_lines, write_json_lines


class Line(BaseModel):
    id: int
    text: str


def test_records_come_back_as_written_non_ascii_kept(tmp_path: Path):
    path = tmp_path / "lines.jsonl"
    write_json_lines(path, [{"id": 1, "text": "čaša"}, {"id": 2, "text": "得分"}])
    assert "čaša" in path.read_text(encoding="utf-8")
    assert read_json_lines(path, Line, UnreadableFile) == [Line(id=1, text="čaša"), Line(id=2, text="得分")]


def test_a_bad_line_names_the_file_and_its_number_and_blank_lines_are_skipped(tmp_path: Path):
    path = tmp_path / "lines.jsonl"
    path.write_text('{"id": 1, "text": "a"}\n\n{"id": "two"}\n', encoding="utf-8")
    with pytest.raises(UnreadableFile, match=r"lines\.jsonl:3: "):
        read_json_lines(path, Line, UnreadableFile)


def test_a_missing_file_names_the_file(tmp_path: Path):
    with pytest.raises(UnreadableFile, match=r"absent\.jsonl"):
        read_json_lines(tmp_path / "absent.jsonl", Line, UnreadableFile)
