"""Convert BELLE's evaluation set into the layout the catalog's BELLE tasks test on.

    python scripts/belle_eval_set.py path/to/eval_set.json data/belle_eval

BELLE's `eval/eval_set.json` (github.com/LianjiaTech/BELLE) holds one JSON object per line, or one
JSON list, with `question`, `class` and `std_answer`. The catalog's BELLE tasks read their test
split from `data/belle_eval/test.jsonl` (relative to where peftbench runs) with the training sets'
columns: `instruction` (the question), `input` (empty), `output` (the reference answer), `class`
(the category the judge's score is averaged in) and an `id` (the line number).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

REQUIRED = ("question", "class", "std_answer")


def read_items(path: Path) -> list[dict]:
    text = path.read_text(encoding="utf-8").strip()
    if text.startswith("["):
        return json.loads(text)
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def convert(items: list[dict]) -> list[dict]:
    rows = []
    for i, item in enumerate(items):
        missing = [k for k in REQUIRED if k not in item]
        if missing:
            raise SystemExit(
                f"item {i} has no {missing}; its keys are {sorted(item)}; expected {list(REQUIRED)}"
            )
        rows.append(
            {
                "id": i,
                "class": item["class"],
                "instruction": item["question"],
                "input": "",
                "output": item["std_answer"],
            }
        )
    return rows


def main(source: str, folder: str) -> None:
    rows = convert(read_items(Path(source)))
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    temporary = out / "test.jsonl.tmp"
    temporary.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    temporary.replace(out / "test.jsonl")
    classes = sorted({r["class"] for r in rows})
    print(f"{len(rows)} prompts in {len(classes)} classes ({', '.join(classes)}) -> {out / 'test.jsonl'}")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        raise SystemExit(__doc__)
    main(sys.argv[1], sys.argv[2])
