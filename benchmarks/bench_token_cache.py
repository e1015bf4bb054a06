"""What the tokenization cache saves per run: preparing a whole task with and without it.

    make bench      (or: .venv/bin/python benchmarks/bench_token_cache.py [--repeats 3])

Prepares a task as a run does, with MiniLM's tokenizer and max_length 128: the movie sentences,
the training split repeated --copies times (default 10: 85,720 train, 500 validation and 1,000
test sentences, as local JSONL files), without the cache (every run tokenizes), then through a
fresh cache (the first run of a sweep: tokenize and store) and again (every later run: load).
`datasets`' own map cache (in ~/.cache/huggingface) is switched off throughout, or it would answer
the repeated rounds. The tokenizer is loaded once, outside the timings; the medians of --repeats
rounds are printed.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import datasets

from peftbench.core.spec import DataSource, TaskSpec, TrainingSettings
from peftbench.models.catalog import MODEL_CATALOG
from peftbench.models.loading import load_tokenizer
from peftbench.tasks import TASK_CATALOG, TASK_TYPES
from peftbench.tasks.sources import BUNDLED_DIR
from peftbench.tasks.token_cache import TokenizationCache


def local_task(folder: Path, copies: int) -> TaskSpec:
    """movie_sentiment as local files, its training split repeated `copies` times."""
    files = {}
    for split in ("train", "validation", "test"):
        text = (BUNDLED_DIR / "movie_sentiment" / f"{split}.jsonl").read_text(encoding="utf-8")
        files[split] = folder / f"{split}.jsonl"
        files[split].write_text(text * (copies if split == "train" else 1), encoding="utf-8")
    source = DataSource(files={split: str(path) for split, path in files.items()})
    return TASK_CATALOG["movie_sentiment"].model_copy(update={"name": "movie_sentiment_x", "source": source})


def measure(args: argparse.Namespace, work: Path) -> dict[str, float]:
    """Run the benchmark in `work` (a temp folder, removed afterwards unless --keep)."""
    task, classification = local_task(work, args.copies), TASK_TYPES["classification"]
    tokenizer = load_tokenizer(MODEL_CATALOG["minilm-l6"])
    settings = TrainingSettings(max_length=128)
    timings: dict[str, list[float]] = {"no_cache": [], "first_run": [], "later_run": []}
    datasets.disable_caching()  # or its own map cache would answer from the second round on
    try:
        for _ in range(args.repeats):
            cache = TokenizationCache(Path(tempfile.mkdtemp(dir=work)))
            for name, use in (("no_cache", None), ("first_run", cache), ("later_run", cache)):
                start = time.perf_counter()
                data = classification.prepare_data(task, tokenizer, settings, cache=use)
                timings[name].append(time.perf_counter() - start)
    finally:
        datasets.enable_caching()
    examples = len(data.train) + len(data.validation) + len(data.test)
    figures = {name: statistics.median(values) for name, values in timings.items()}
    print(
        f"preparing {examples} sentences: no cache {figures['no_cache']:.2f} s, "
        f"first run of a sweep {figures['first_run']:.2f} s, later runs {figures['later_run']:.2f} s"
    )
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({"examples": examples, **figures}, indent=2))
    return figures


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--copies", type=int, default=10, help="copies of the training split")
    parser.add_argument("--out", type=Path, default=None, help="write the figures as JSON here")
    parser.add_argument("--keep", action="store_true", help="keep the temp folder of the runs")
    args = parser.parse_args(argv)

    work = Path(tempfile.mkdtemp(prefix="bench-token-cache-"))
    try:
        return measure(args, work)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
