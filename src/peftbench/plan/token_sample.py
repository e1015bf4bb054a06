"""Tokens per training example, measured on the data before any run: the estimate's length.

For a classification task whose data is on this disk (bundled or local files) and a model whose
tokenizer is here (a package, a folder, the HF cache; nothing is downloaded), the first SAMPLE
training examples are tokenized as the task type does — the text columns as one sequence or a
pair, truncated at max_length — and their mean length is the estimate's tokens per example. Other
task types (choices, spans, generation) shape their sequences in ways only their own encoding knows:
they are measured by finished runs (plan/calibration.py), else taken as max_length long.
"""

from __future__ import annotations

import logging
import statistics
from functools import lru_cache
from typing import Any

from peftbench.core.spec import ModelRef, RunSpec, TaskSpec

SAMPLE = 256  # examples tokenized per task, model and max_length

log = logging.getLogger(__name__)


def sampled_tokens_per_example(run: RunSpec) -> float | None:
    """The mean tokens of the first SAMPLE training examples; None where they cannot be read here."""
    task = run.task
    if task.type != "classification" or task.source.hub is not None or not 1 <= len(task.text_columns) <= 2:
        return None
    return _mean_tokens(task.model_dump_json(), run.model.model_dump_json(), run.training.max_length)


@lru_cache(maxsize=256)
def _mean_tokens(task_json: str, model_json: str, max_length: int) -> float | None:
    from transformers import AutoTokenizer

    from peftbench.models.loading import resolve_source
    from peftbench.models.shapes import cached_folder, is_local
    from peftbench.tasks.sources import load_rows

    task, model = TaskSpec.model_validate_json(task_json), ModelRef.model_validate_json(model_json)
    if model.source.startswith("run:") or model.gguf_file:  # built by another run; a GGUF file: not here
        return None
    # never the network: a hub model's tokenizer from its HF cache folder, found on disk (models.shapes)
    folder = resolve_source(model.source) if is_local(model.source) else cached_folder(model)
    if folder is None:
        return None
    try:
        tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
        rows: Any = load_rows(task, "train", SAMPLE, task.text_columns)
    except Exception as err:  # no tokenizer or data here: the estimate says it assumed max_length
        log.debug("tokens per example of %s not measured: %s", task.name, err)
        return None
    columns = [[str(text) for text in rows[c]] for c in task.text_columns]
    encoded = tokenizer(*columns, truncation=True, max_length=max_length)
    lengths = [len(ids) for ids in encoded["input_ids"]]
    return statistics.fmean(lengths) if lengths else None
