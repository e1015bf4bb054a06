"""JSON Lines files of a run (predictions, saved answers): one record a line, written atomically,
read back as their models with the file and line of the first that is not one."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, TextIO, TypeVar

from pydantic import BaseModel, ValidationError

from peftbench.core.files import write_text_atomic

Record = TypeVar("Record", bound=BaseModel)


def write_json_lines(path: Path, records: Iterable[Mapping[str, Any]]) -> None:
    """One JSON object a line, non-ASCII kept as it is; all or nothing (core/files.py)."""

    def write(f: TextIO) -> None:
        for record in records:
            f.write(json.dumps(record, ensure_ascii=False) + "\n")

    write_text_atomic(path, write)


def read_json_lines(path: Path, model: type[Record], unreadable: type[Exception]) -> list[Record]:
    """Each non-blank line as `model`; a file that cannot be read, or a line that is not one, raises
    `unreadable` naming the file (and the line)."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as err:
        raise unreadable(f"{path}: {err.strerror or err}") from err
    records = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            records.append(model.model_validate_json(line))
        except ValidationError as err:
            raise unreadable(f"{path}:{number}: {err.errors()[0]['msg']}") from err
    return records
