"""Reading a task's splits from wherever its TaskSpec says: bundled, a hub dataset, or local files."""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from peftbench.core.spec import DataSource, TaskSpec
from peftbench.tasks.coreference.conll import conll_split, is_conll_file
from peftbench.tasks.coreference.corefud import is_corefud_file, read_corefud
from peftbench.tasks.prompts import column_value
from peftbench.tasks.row_layouts import apply_layout

BUNDLED_DIR = Path(__file__).parent / "data"
FILE_BUILDERS = {"jsonl": "json", "json": "json", "csv": "csv", "tsv": "csv", "parquet": "parquet"}
"""The `datasets` builder that reads a local file, by its suffix."""


def local_files_cache() -> str | None:
    """Where `datasets` writes its arrow copy of local or bundled files: its own cache (None), or,
    where that cannot be written (a shared HF cache bound read-only into the image, as
    `make image-rehearsal` found), a folder of this user's under the temporary directory."""
    import datasets

    cache = Path(datasets.config.HF_DATASETS_CACHE)
    existing = next(folder for folder in (cache, *cache.parents) if folder.exists())
    if os.access(existing, os.W_OK):
        return None
    return str(Path(tempfile.gettempdir()) / f"peftbench-datasets-{os.getuid()}")


def missing_files(source: DataSource) -> list[str]:
    """Local files a source names that do not exist (checked before anything runs)."""
    if source.bundled is not None:
        folder = BUNDLED_DIR / source.bundled
        return [] if folder.is_dir() else [str(folder)]
    if source.files is not None:
        return [f for f in source.files.values() if not Path(f).is_file()]
    return []


def split_source(task: TaskSpec, split: str) -> tuple[DataSource, str]:
    """Where one of our splits is read: the source and its split expression.

    The test split comes from `test_source` when the task has one (one evaluation set shared by
    tasks that train on different data, as BELLE's 1k prompts): read there as `splits["test"]`.
    """
    if split == "test" and task.test_source is not None:
        return task.test_source, task.splits["test"]
    return task.source, task.splits[split]


def load_split(task: TaskSpec, split: str) -> Any:
    """One split as a `datasets.Dataset`, read from local files or the hub (HF cache when offline)."""
    from datasets import load_dataset

    src, source_split = split_source(task, split)
    if src.bundled is not None:
        return bundled_split(src.bundled, source_split)
    if src.files is not None:
        return local_split(task.name, split, src, source_split)
    return apply_layout(load_dataset(src.hub, src.config, split=source_split), src.layout)


def bundled_split(bundled: str, source_split: str) -> Any:
    """One split of a data set shipped with peftbench (tasks/data/<name>/<split>.jsonl)."""
    from datasets import load_dataset

    folder = BUNDLED_DIR / bundled
    files = {
        name: str(folder / f"{name}.jsonl")
        for name in ("train", "validation", "test")
        if (folder / f"{name}.jsonl").is_file()
    }
    return load_dataset("json", data_files=files, split=source_split, cache_dir=local_files_cache())


def local_split(task_name: str, split: str, src: DataSource, source_split: str) -> Any:
    """One split of local files: a table (FILE_BUILDERS, by the first file's suffix) or coreference
    documents (*_conll files, CorefUD .conllu files)."""
    from datasets import load_dataset

    every_file = src.files or {}
    files = split_files(task_name, split, every_file, source_split)
    if is_conll_file(next(iter(files.values()))):  # coreference documents, not a table
        return conll_split(task_name, files, source_split)
    if is_corefud_file(next(iter(files.values()))):  # CorefUD documents, as cjvt's hub rows
        return conll_split(task_name, files, source_split, reader=read_corefud)
    suffix = Path(next(iter(every_file.values()))).suffix.lstrip(".")
    extra = {"delimiter": "\t"} if suffix == "tsv" else {}
    data = load_dataset(
        FILE_BUILDERS[suffix], data_files=files, split=source_split, cache_dir=local_files_cache(), **extra
    )
    return apply_layout(data, src.layout)


def split_files(task_name: str, split: str, files: dict[str, str], source_split: str) -> dict[str, str]:
    """The files a split expression reads, each named by its source split; one it names but lacks raises."""
    unknown = [name for name in split_names(source_split) if name not in files]
    if unknown:
        raise ValueError(
            f"Task {task_name!r}: split {split!r} reads {source_split!r}, but source.files has no "
            f"{unknown}; it has {sorted(files)}."
        )
    return {name: files[name] for name in split_names(source_split)}


def load_rows(task: TaskSpec, split: str, limit: int | None, columns: Sequence[str]) -> Any:
    """One split's first `limit` rows (None: all), checked to have every column path in `columns`;
    with a `group_column`, whole groups (first_rows)."""
    data = load_split(task, split)
    missing = missing_columns(data, list(dict.fromkeys(columns)))
    if missing:
        hint = " (dots enter structs, e.g. translation.sl)" if any("." in c for c in missing) else ""
        raise ValueError(
            f"Task {task.name!r}, split {split!r}: no column(s) {missing}; "
            f"the data has {data.column_names}{hint}."
        )
    return first_rows(data, limit, task.group_column)


def first_rows(data: Any, limit: int | None, group_column: str | None = None) -> Any:
    """The first `limit` rows; with `group_column`, every row of each group those rows start.

    A group is scored whole (MultiRC's `em`: a question is right when all its answers are), so a
    cut never splits one: a split keeps at least `limit` rows, and fewer than one group's more.
    Rows keep their order; a group's rows need not be next to each other.
    """
    if limit is None or limit >= len(data):
        return data
    if group_column is None:
        return data.select(range(limit))
    groups = data[group_column]
    started = set(groups[:limit])
    return data.select([i for i, group in enumerate(groups) if group in started])


def limit_identity(task: TaskSpec, limit: int | None) -> Any:
    """The row limit's part of a tokenization cache key: a limit on a grouped task keeps whole groups,
    other rows than the first `limit`, so it is a key of its own."""
    if limit is None or task.group_column is None:
        return limit
    return {"rows": limit, "whole_groups": task.group_column}


def missing_columns(data: Any, paths: list[str]) -> list[str]:
    """The column paths `data` lacks: a column it has not, or a struct field its first row has not."""
    first = data[0] if len(data) else None

    def has(path: str) -> bool:
        if path.split(".")[0] not in data.column_names:
            return False
        if first is None:
            return True
        try:
            column_value(first, path)
        except KeyError:
            return False
        return True

    return [path for path in paths if not has(path)]


def split_names(source_split: str) -> list[str]:
    """The source splits a datasets split expression reads: 'train[:90%]+validation' -> [train, validation].

    Local files are read one split at a time: a test file without the label column (SuperGLUE's)
    then never has to share a schema with the labelled train file.
    """
    return list(dict.fromkeys(re.findall(r"(?:^|\+)\s*([^\[+\s]+)", source_split)))
