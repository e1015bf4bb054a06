"""Rebuild the vendored demo data from the original source distributions.

The JSONL files under src/peftbench/tasks/data/ were written by this script; it is kept so that
anyone can check where every example came from. It is never run at training time.

    pip download --no-deps --no-binary :all: -d /tmp/src vadersentiment==3.3.2
    # untar it, then untar additional_resources/hutto_ICWSM_2014.tar.gz inside it
    # bigbench==1.0.0 (sdist, 358 MB): untar only the task.json files named below
    python scripts/vendor_data.py --vader DIR_WITH_movieReviewSnippets_and_tweets --bigbench DIR_WITH_TASKS
"""

from __future__ import annotations

import argparse
import json
import random
import re
from pathlib import Path

OUT = Path(__file__).resolve().parents[1] / "src" / "peftbench" / "tasks" / "data"


def split(rows: list[dict], n_validation: int, n_test: int, seed: int = 0) -> dict[str, list]:
    """Shuffle once with a fixed seed and cut test, validation, train in that order."""
    rows = rows[:]
    random.Random(seed).shuffle(rows)
    return {
        "test": rows[:n_test],
        "validation": rows[n_test : n_test + n_validation],
        "train": rows[n_test + n_validation :],
    }


def write(task: str, splits: dict[str, list]) -> None:
    folder = OUT / task
    folder.mkdir(parents=True, exist_ok=True)
    for name, rows in splits.items():
        with open(folder / f"{name}.jsonl", "w", encoding="utf-8") as f:
            for row in rows:
                f.write(json.dumps(row, ensure_ascii=False) + "\n")
        print(f"{task}/{name}.jsonl: {len(rows)} rows")


def vader_sentiment(vader_dir: Path, file: str) -> list[dict]:
    """Snippets rated -4..4 by 20 people; binarised, near-neutral ones dropped."""
    rows = []
    text = (vader_dir / file).read_text(encoding="latin-1")
    for line in text.splitlines():
        if not line.strip():
            continue
        ident, rating, sentence = line.split("\t", 2)
        score = float(rating)
        if abs(score) < 0.5:
            continue
        sentence = sentence.replace("''", '"').strip()
        rows.append({"id": int(ident), "sentence": sentence, "rating": score, "label": int(score > 0)})
    return rows


def movie_sentiment(vader_dir: Path) -> None:
    """Rotten Tomatoes snippets."""
    rows = vader_sentiment(vader_dir, "movieReviewSnippets_GroundTruth.txt")
    write("movie_sentiment", split(rows, n_validation=500, n_test=1000))


def tweet_sentiment(vader_dir: Path) -> None:
    """Tweets (the demo's second domain), balanced: every negative tweet and as many positive ones,
    drawn with a fixed seed (68% of the rated tweets are positive; balanced, chance is 0.5 as in
    movie_sentiment, and a short run cannot look good by answering 'positive')."""
    rows = vader_sentiment(vader_dir, "tweets_GroundTruth.txt")
    negative = [r for r in rows if r["label"] == 0]
    positive = random.Random(0).sample([r for r in rows if r["label"] == 1], len(negative))
    balanced = sorted(negative + positive, key=lambda r: r["id"])
    write("tweet_sentiment", split(balanced, n_validation=300, n_test=600))


def bigbench_pairs(task_json: Path, pattern: str, labels: list[str]) -> list[dict]:
    """Cut a BIG-bench NLI prompt into its two sentences; the label is the choice scored 1."""
    examples = json.loads(task_json.read_text(encoding="utf-8"))["examples"]
    rows = []
    for i, ex in enumerate(examples):
        match = re.match(pattern, ex["input"], flags=re.S)
        if match is None:
            raise ValueError(f"{task_json}: example {i} does not match {pattern!r}")
        gold = max(ex["target_scores"], key=ex["target_scores"].get)
        rows.append(
            {
                "id": i,
                "premise": match["premise"].strip(),
                "hypothesis": match["hypothesis"].strip(),
                "label": labels.index(gold),
            }
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--vader", type=Path, required=True)
    parser.add_argument("--bigbench", type=Path, required=True)
    args = parser.parse_args()
    movie_sentiment(args.vader)
    tweet_sentiment(args.vader)
    rows = bigbench_pairs(
        args.bigbench / "presuppositions_as_nli" / "task.json",
        r"Sentence 1:(?P<premise>.*)\nSentence 2:(?P<hypothesis>.*?)\n\nThe answer is:",
        ["entailment", "neutral", "contradiction"],
    )
    write("presupposition_nli", split(rows, n_validation=100, n_test=200))
    rows = bigbench_pairs(
        args.bigbench / "epistemic_reasoning" / "task.json",
        r"Premise:(?P<premise>.*)Hypothesis:(?P<hypothesis>.*)",
        ["entailment", "non-entailment"],
    )
    write("epistemic_nli", split(rows, n_validation=250, n_test=500))


if __name__ == "__main__":
    main()
