"""Cut the small real slices under tests/fixtures/upstream/ from the upstream repositories.

    git clone --recurse-submodules https://github.com/nytud/HuLU /tmp/HuLU
    python scripts/vendor_real_slices.py --hulu /tmp/HuLU

Each HuLU task repository (nytud/HuCOLA, HuCoPA, HuRTE, HuSST, HuWNLI) keeps its splits as JSON lists
under data/. The slice keeps that layout and those file names (a user's copy of the upstream
archive, read with `files:`): the first TRAIN rows of the train file and the first DEV rows of the
dev file, every field as upstream writes it, with the repository's licence beside them. The commit
each slice was cut from is written into its README. It is never run at training time.
"""

from __future__ import annotations

import argparse
import json
import subprocess
from pathlib import Path

OUT = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "upstream" / "hulu"
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--hulu", type=Path, required=True, help="nytud/HuLU cloned with its submodules")
    hulu = parser.parse_args().hulu
    for task in FILES:
        vendor_task(hulu, task)


if __name__ == "__main__":
    main()
