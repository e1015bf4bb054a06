"""A model's architecture for planning, offline and at once: never a network call, never a retry.

Planning (the GPU-memory estimate) needs a model's config only: layers, hidden size, vocabulary.
It comes, in this order, from the model's own folder or package, from the HF cache
(`local_files_only`, so transformers never asks the hub), or from `shapes.json`: the config
facts of the catalog's and the study sweeps' hub models, shipped with the package. A model known
to none of them has no shape here; `peftbench fetch` puts its config into the cache.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from peftbench.core.spec import RUN_SOURCE, ModelRef

SHAPES_FILE = Path(__file__).resolve().parent / "shapes.json"


@cache
def shipped_shapes() -> dict[str, dict[str, Any]]:
    """hub id -> transformers config arguments, from the packaged table."""
    table = json.loads(SHAPES_FILE.read_text(encoding="utf-8"))
    return {source: facts for source, facts in table.items() if not source.startswith("_")}


def is_local(source: str) -> bool:
    """A package or a folder: its config is read from disk, never from a hub."""
    return source.startswith(("package:", "/", "./", "../", "~")) or Path(source).expanduser().is_dir()


def planning_config(ref: ModelRef) -> tuple[Any | None, str]:
    """(the model's transformers config, where it came from), or (None, why not) without a network call.

    `run:` sources (incremental tuning) name another run's model, which exists only once it has
    trained: (None, "run").
    """
    from transformers import AutoConfig

    from peftbench.models.loading import resolve_source

    if ref.source.startswith(RUN_SOURCE):
        return None, "run"
    extra = {"gguf_file": ref.gguf_file} if ref.gguf_file else {}
    try:
        folder = resolve_source(ref.source) if is_local(ref.source) else cached_folder(ref)
        if folder is not None:
            return AutoConfig.from_pretrained(folder, local_files_only=True, **extra), "cache"
    except (OSError, ValueError, ImportError):
        pass
    facts = shipped_shapes().get(ref.source)
    if facts is not None and not is_local(ref.source):
        facts = dict(facts)
        return AutoConfig.for_model(facts.pop("model_type"), **facts), "table"
    return None, "unknown"


def cached_folder(ref: ModelRef) -> str | None:
    """The HF cache's snapshot folder holding this hub model's config, found on disk alone.

    Not `from_pretrained(hub_id, local_files_only=True)`: huggingface_hub still builds request
    headers there, and fetches its agent registry from the hub to do so (seen: one connection).
    """
    from huggingface_hub import try_to_load_from_cache

    found = try_to_load_from_cache(ref.source, ref.gguf_file or "config.json")
    return str(Path(found).parent) if isinstance(found, str) else None
