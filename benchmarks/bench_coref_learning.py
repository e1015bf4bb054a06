"""Does the coreference head learn what it has not seen? Held-out CoNLL F1 against a string-match baseline.

    python benchmarks/bench_coref_learning.py --steps 50 100 200 --out runs/bench/coref_learning.json

MiniLM-L6 (shipped offline) with full fine-tuning trains on the 8 training documents of
tests/fixtures/conll2012_en (CoNLL-2012 `*_v4_gold_conll` layout, read as the catalog's
`conll2012_en` reads its files) for each number of steps, and is scored on the 2 test documents it
never saw (the CoNLL F1: the mean of MUC, B³ and CEAFφ4, tasks/coreference/scores.py). Beside it,
on the same documents and by the same scorer, a string-match baseline that knows no mentions: every
span of one to three alphabetic words, lower-cased, linked to every other span with the same text.
The figure that matters is each step count's F1 minus the baseline's, from one run of this script.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from peftbench.core.spec import DataSource, RunSpec, TrainingSettings
from peftbench.methods import METHODS
from peftbench.models.catalog import MODEL_CATALOG
from peftbench.run.one import run_one
from peftbench.tasks import TASK_CATALOG
from peftbench.tasks.coreference.conll import read_conll
from peftbench.tasks.coreference.scores import coref_metrics

FIXTURE = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "conll2012_en"
FILES = {s: str(FIXTURE / f"{s}.v4_gold_conll") for s in ("train", "validation", "test")}
MAX_WIDTH = 3


def string_match_clusters(sentences: list[list[str]]) -> list[list[tuple[int, int]]]:
    """Spans of 1..MAX_WIDTH alphabetic words within a sentence, grouped by their lower-cased text."""
    by_text: dict[str, list[tuple[int, int]]] = defaultdict(list)
    offset = 0
    for sentence in sentences:
        for i, j in sentence_spans(len(sentence)):
            span = sentence[i : j + 1]
            if all(w.isalpha() for w in span):
                by_text[" ".join(span).lower()].append((offset + i, offset + j))
        offset += len(sentence)
    return [spans for spans in by_text.values() if len(spans) > 1]


def sentence_spans(length: int) -> list[tuple[int, int]]:
    """(first, last) word of every span of 1..MAX_WIDTH words in a sentence of `length` words."""
    return [(i, j) for i in range(length) for j in range(i, min(i + MAX_WIDTH, length))]


def baseline_f1() -> float:
    documents = read_conll(FILES["test"])
    pairs = [
        ([[tuple(m) for m in c] for c in doc["clusters"]], string_match_clusters(doc["sentences"]))
        for doc in documents
    ]
    return coref_metrics(pairs)["conll_f1"]


def run_spec(steps: int, learning_rate: float, seed: int) -> RunSpec:
    task = TASK_CATALOG["conll2012_en"].model_copy(update={"source": DataSource(files=FILES)})
    training = TrainingSettings(
        max_steps=steps,
        batch_size=8,
        learning_rate=learning_rate,
        warmup_ratio=0.0,
        max_length=128,
        eval_strategy="no",
        precision="fp32",
    )
    return RunSpec(
        sweep="bench-coref-learning",
        model=MODEL_CATALOG["minilm-l6"],
        task=task,
        method="full",
        label="full",
        params=METHODS["full"].Params().model_dump(mode="json"),
        training=training,
        seed=seed,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--steps", type=int, nargs="+", default=[50, 100, 200])
    parser.add_argument("--learning-rate", type=float, default=1e-4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("runs/bench/coref_learning.json"))
    args = parser.parse_args()
    baseline = baseline_f1()
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        for steps in args.steps:
            spec = run_spec(steps, args.learning_rate, args.seed)
            started = time.perf_counter()
            result = run_one(spec, Path(tmp) / spec.run_id)
            if result.status != "success":
                raise SystemExit(f"{steps} steps: {result.status}: {result.error}")
            f1 = result.test["conll_f1"]
            rows.append(
                {
                    "steps": steps,
                    "test_conll_f1": f1,
                    "minus_baseline": f1 - baseline,
                    "seconds": round(time.perf_counter() - started, 1),
                }
            )
            print(
                f"{steps:>5} steps: held-out CoNLL F1 {f1:.3f} (string match {baseline:.3f}), "
                f"{rows[-1]['seconds']} s"
            )
    report = {
        "baseline_string_match_conll_f1": baseline,
        "learning_rate": args.learning_rate,
        "seed": args.seed,
        "runs": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
