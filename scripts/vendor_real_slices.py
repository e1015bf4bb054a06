"""Cut the small real slices under tests/fixtures/upstream/ from the upstream repositories.

    git clone --recurse-submodules https://github.com/nytud/HuLU /tmp/HuLU
    python scripts/vendor_real_slices.py --hulu /tmp/HuLU
    python scripts/vendor_real_slices.py --commonsense-qa FOLDER   # upstream *_rand_split*.jsonl

Each HuLU task repository (nytud/HuCOLA, HuCoPA, HuRTE, HuSST, HuWNLI) keeps its splits as JSON lists
under data/. The slice keeps that layout and those file names (a user's copy of the upstream
archive, read with `files:`): the first TRAIN rows of the train file and the first DEV rows of the
dev file, every field as upstream writes it, with the repository's licence beside them. The commit
each slice was cut from is written into its README. It is never run at training time.

CommonsenseQA's upstream files (train_rand_split.jsonl, dev_rand_split.jsonl,
test_rand_split_no_answers.jsonl; one nested `question` per line) are written in the columns the hub
copy tau/commonsense_qa gives (CSQA_SPLITS, to_hub_row), one JSONL per hub split: a folder
`load_dataset` reads as it reads the hub repository.
"""

from __future__ import annotations

import argparse
import json
import subprocess
from pathlib import Path

UPSTREAM = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "upstream"
OUT = UPSTREAM / "hulu"
CSQA_SPLITS = {  # upstream file -> the hub split it becomes
    "train_rand_split.jsonl": "train",
    "dev_rand_split.jsonl": "validation",
    "test_rand_split_no_answers.jsonl": "test",
}
TRAIN, DEV = 24, 12
FILES = {  # task repository -> (train file, dev file, licence file)
    "HuCOLA": ("data/cola_train.json", "data/cola_dev.json", "LICENSE"),
    "HuCoPA": ("data/train.json", "data/val.json", "LICENSE"),
    "HuRTE": ("data/rte_train.json", "data/rte_dev.json", "LICENSE"),
    "HuSST": ("data/sst_train.json", "data/sst_dev.json", "LICENSE.md"),
    "HuWNLI": ("data/train.json", "data/dev.json", "LICENSE"),
}


def commit_of(repo: Path) -> str:
    found = subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True)
    return found.stdout.strip() or "unknown (not a git checkout)"


def cut(source: Path, target: Path, rows: int) -> int:
    data = json.loads(source.read_text(encoding="utf-8-sig"))
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(data[:rows], ensure_ascii=False, indent=4) + "\n", encoding="utf-8")
    return len(data)


def vendor_task(hulu: Path, task: str) -> None:
    train, dev, licence = FILES[task]
    repo = hulu / task
    folder = OUT / task
    sizes = {name: cut(repo / name, folder / name, n) for name, n in ((train, TRAIN), (dev, DEV))}
    (folder / "LICENSE.txt").write_text((repo / licence).read_text(encoding="utf-8"), encoding="utf-8")
    (folder / "README.md").write_text(
        f"# {task}: a real slice, in the upstream layout\n\n"
        f"Source: github.com/nytud/{task} at commit {commit_of(repo)}. The first {TRAIN} rows of "
        f"`{train}` (of {sizes[train]:,}) and the first {DEV} of `{dev}` (of {sizes[dev]:,}), fields "
        f"as upstream writes them (re-indented JSON). Licence: the repository's `{licence}`, copied "
        "to LICENSE.txt beside this file. Cut by scripts/vendor_real_slices.py; read by "
        "tests/test_real_slices.py through `files:`, as a user's copy of the archive is.\n",
        encoding="utf-8",
    )
    print(f"{task}: {TRAIN} of {sizes[train]} train, {DEV} of {sizes[dev]} dev -> {folder}")


def to_hub_row(row: dict) -> dict:
    """One upstream CommonsenseQA line in tau/commonsense_qa's columns (its loading script's mapping:
    the stem becomes `question`, the choices a struct of lists, a test row's missing key "")."""
    question = row["question"]
    return {
        "id": row["id"],
        "question": question["stem"],
        "question_concept": question["question_concept"],
        "choices": {
            "label": [c["label"] for c in question["choices"]],
            "text": [c["text"] for c in question["choices"]],
        },
        "answerKey": row.get("answerKey", ""),
    }


def vendor_commonsense_qa(upstream: Path, rows: int = 5) -> None:
    folder = UPSTREAM / "commonsense_qa"
    folder.mkdir(parents=True, exist_ok=True)
    for name, split in CSQA_SPLITS.items():
        lines = (upstream / name).read_text(encoding="utf-8").splitlines()[:rows]
        converted = [json.dumps(to_hub_row(json.loads(line)), ensure_ascii=False) for line in lines]
        (folder / f"{split}.jsonl").write_text("\n".join(converted) + "\n", encoding="utf-8")
        print(f"commonsense_qa: {len(converted)} rows of {name} -> {folder / split}.jsonl")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--hulu", type=Path, help="nytud/HuLU cloned with its submodules")
    parser.add_argument("--commonsense-qa", type=Path, help="a folder with CommonsenseQA's upstream files")
    args = parser.parse_args()
    for task in FILES if args.hulu else ():
        vendor_task(args.hulu, task)
    if args.commonsense_qa:
        vendor_commonsense_qa(args.commonsense_qa)


if __name__ == "__main__":
    main()
