"""Tokenized splits shared by every run of a sweep: one tokenisation per task and split, not per run.

An entry is a folder `<root>/<key>/` written by `datasets.Dataset.save_to_disk`, plus `key.json`
(what the key was made of, for humans). The key is a hash of everything that decides the tokens:
a fingerprint of the source data (the bytes of local files; the `datasets` fingerprint of a hub
split), the tokenizer (class, name, and a hash of its vocabulary, normalizer and special tokens),
max_length, the text and label columns, the source split and how many examples are kept, and
FORMAT_VERSION (bump it when the encoding itself changes).

The root is `<sweep folder>/.cache/tokenized` (the parent of a run's folder), or
`$PEFTBENCH_CACHE/tokenized` when that variable is set, e.g. to share entries between sweeps.

Writes are atomic: an entry is built in a temp folder beside it and renamed into place, so a reader
never sees half an entry. When two processes build the same key at once, the first rename wins;
the other drops its copy (identical by construction) and loads the winner's.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from peftbench.tasks.sources import BUNDLED_DIR, limit_identity, load_rows, load_split, split_source

if TYPE_CHECKING:
    from peftbench.core.spec import TaskSpec

CACHE_ENV = "PEFTBENCH_CACHE"
FORMAT_VERSION = 2  # 2: keeps the examples' own ids (example_id)
KEY_FILE = "key.json"

BUILDS: Counter[str] = Counter()
"""Tokenisations done in this process, by cache key (tests count them)."""

log = logging.getLogger(__name__)


def cache_root(run_dir: Path) -> Path:
    """Where a run's cache lives: beside the other runs of its sweep, unless $PEFTBENCH_CACHE says."""
    override = os.environ.get(CACHE_ENV)
    if override:
        return Path(override).expanduser() / "tokenized"
    return Path(run_dir).resolve().parent / ".cache" / "tokenized"


def tokenizer_fingerprint(tokenizer: Any) -> str:
    """A hash of what decides a tokenizer's output; its truncation/padding state is left out.

    That state is changed by every call with `truncation=True, max_length=...`, and max_length is a
    key part of its own.
    """
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None:
        state = json.loads(backend.to_str())
        state.pop("truncation", None)
        state.pop("padding", None)
    else:  # a slow (Python) tokenizer: its vocabulary stands for it
        state = {"vocab": sorted(tokenizer.get_vocab().items())}
    state["special_tokens"] = {k: str(v) for k, v in tokenizer.special_tokens_map.items()}
    state["sides"] = [tokenizer.padding_side, tokenizer.truncation_side]
    return _digest(state)


def tokenizer_identity(tokenizer: Any) -> dict[str, str]:
    """Class, name and content hash: the tokenizer's part of a cache key."""
    return {
        "class": type(tokenizer).__name__,
        "name": Path(str(tokenizer.name_or_path)).name,
        "content": tokenizer_fingerprint(tokenizer),
    }


def files_fingerprint(files: dict[str, Path]) -> str:
    """sha256 over the split names, file names and bytes of local data files."""
    sha = hashlib.sha256()
    for name, path in sorted(files.items()):
        sha.update(f"{name}={Path(path).name}\n".encode())
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                sha.update(block)
    return sha.hexdigest()[:16]


def layout_code(layout: str) -> str:
    """A hash of the layout function's source: rows reshaped by an older version of it are not reused."""
    import inspect

    from peftbench.tasks.row_layouts import LAYOUTS

    return hashlib.sha256(inspect.getsource(LAYOUTS[layout]).encode()).hexdigest()[:16]


def source_identity(task: TaskSpec, split: str) -> dict[str, Any]:
    """The source data's part of a cache key: a hash of local files, or a hub split's fingerprint.

    A hub split is loaded (from the local HF cache when offline) to read its `datasets`
    fingerprint; local files are only hashed.
    """
    src, source_split = split_source(task, split)
    layout = {"layout": src.layout, "layout_code": layout_code(src.layout)} if src.layout is not None else {}
    if src.bundled is not None:
        folder = BUNDLED_DIR / src.bundled
        files = {p.stem: p for p in folder.glob("*.jsonl")}
        return {"files": files_fingerprint(files), "split": source_split, **layout}
    if src.files is not None:
        files = {name: Path(f) for name, f in src.files.items()}
        return {"files": files_fingerprint(files), "split": source_split, **layout}
    fingerprint = load_split(task, split)._fingerprint
    return {"hub": src.hub, "config": src.config, "split": source_split, "fingerprint": fingerprint, **layout}


def tokenized_split(
    task: TaskSpec,
    split: str,
    limit: int | None,
    tokenizer: Any,
    cache: TokenizationCache | None,
    settings: dict[str, Any],
    columns: Sequence[str],
    encode: Callable[[Any], Any],
) -> Any:
    """One split: loaded, checked to have the column paths `columns`, cut to `limit` examples, encoded
    by `encode`.

    Through `cache` when given. `settings` joins the source data (its own split included), the
    tokenizer and the limit in the cache key: it must hold everything else that decides what `encode`
    makes (task type, max_length, columns, an encoding only the training split gets, ...). Two of our
    splits that read the same source split with the same settings share one entry.
    """

    def build() -> Any:
        return encode(load_rows(task, split, limit, columns))

    if cache is None:
        return build()
    parts = {
        **settings,
        "source": source_identity(task, split),
        "tokenizer": tokenizer_identity(tokenizer),
        "limit": limit_identity(task, limit),
    }
    return cache.load_or_build(parts, build, label=f"{task.name}/{split}")


class TokenizationCache:
    """Load a tokenized split by key, or build it once and keep it for every later run."""

    def __init__(self, root: Path):
        self.root = Path(root)

    def entry(self, parts: dict[str, Any]) -> Path:
        return self.root / _digest({"format": FORMAT_VERSION, **parts})

    def load_or_build(self, parts: dict[str, Any], build: Callable[[], Any], label: str = "") -> Any:
        """The cached dataset for `parts`, or `build()`'s result, stored under their key first.

        `parts` must hold everything that decides the result of `build`; `label` names it in logs.
        """
        entry = self.entry(parts)
        if entry.is_dir():
            try:
                dataset = _load(entry)
                log.info("tokenized %s: reused %s", label, entry)
                return dataset
            except Exception as err:  # unreadable (e.g. written by another datasets version): rebuild
                log.warning("tokenized %s: cache entry %s unreadable (%s); rebuilding", label, entry, err)
                _discard(entry)
        dataset = build()
        BUILDS[entry.name] += 1
        if self._publish(dataset, parts, entry, label):
            log.info("tokenized %s: built and cached in %s", label, entry)
        return _load(entry) if entry.is_dir() else dataset

    def _publish(self, dataset: Any, parts: dict[str, Any], entry: Path, label: str) -> bool:
        """Write `dataset` to a temp folder, then rename it to `entry`. False when another process won."""
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = self.root / f".tmp-{entry.name}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        try:
            dataset.save_to_disk(str(tmp))
            (tmp / KEY_FILE).write_text(json.dumps(parts, indent=2, sort_keys=True), encoding="utf-8")
            os.rename(tmp, entry)  # atomic; fails when `entry` exists, i.e. another process was first
            return True
        except OSError as err:
            if not entry.is_dir():
                log.warning("tokenized %s: could not cache it in %s (%s)", label, entry, err)
            return False
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


def _load(entry: Path) -> Any:
    from datasets import load_from_disk

    return load_from_disk(str(entry))


def _discard(entry: Path) -> None:
    """Move an entry aside atomically, then delete it: readers see it whole or not at all."""
    trash = entry.with_name(f".trash-{entry.name}-{uuid.uuid4().hex[:8]}")
    try:
        os.rename(entry, trash)
    except OSError:
        return  # another process moved or replaced it first
    shutil.rmtree(trash, ignore_errors=True)


def _digest(data: Any) -> str:
    canonical = json.dumps(data, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]
