"""Convert copies of BELLE's evaluation set (and judge prompts) downloaded by hand into the layout the
catalog's BELLE tasks test on. `peftbench fetch SWEEP` downloads, checks and converts them itself;
this is for a copy brought by other means.

    python scripts/belle_eval_set.py path/to/eval_set.json data/belle_eval [--prompts eval_prompt.json]

It writes `test.jsonl` (and, with `--prompts`, `judge_prompts.yaml`) with the same code as fetch
(src/peftbench/tools/belle_eval.py, where the layout and the study's versions are described), and
says whether the files given are the study's versions (git blob ids).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

from peftbench.core.files import write_paths_atomic
from peftbench.tools.belle_eval import (
    PROMPTS_FILE,
    TEST_FILE,
    WITHOUT_REFERENCE,
    BelleEvalError,
    convert,
    jsonl_text,
    judge_prompts,
    judge_prompts_text,
)
from peftbench.tools.belle_eval import read_items as read_text_items
from peftbench.tools.belle_eval import which_version as version_of

__all__ = ["WITHOUT_REFERENCE", "convert", "judge_prompts", "main", "read_items", "which_version"]


def read_items(path: Path) -> list[dict]:
    return read_text_items(path.read_text(encoding="utf-8"))


def which_version(path: Path) -> str:
    return version_of(path.read_bytes())


def main(source: Path, folder: Path, prompts: Path | None) -> None:
    try:
        rows = convert(read_items(source))
    except BelleEvalError as err:
        raise SystemExit(f"{source}: {err}") from None
    texts = {folder / TEST_FILE: jsonl_text(rows)}
    if prompts is not None:
        texts[folder / PROMPTS_FILE] = judge_prompts_text(read_items(prompts))
    write_paths_atomic({path: _writer(text) for path, text in texts.items()})
    classes = sorted({r["class"] for r in rows})
    print(f"{source}: {which_version(source)}")
    print(f"{len(rows)} prompts in {len(classes)} classes ({', '.join(classes)}) -> {folder / TEST_FILE}")
    if prompts is not None:
        print(f"{prompts}: {which_version(prompts)} -> {folder / PROMPTS_FILE}")


def _writer(text: str) -> Callable[[Path], None]:
    return lambda path: path.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("eval_set", type=Path)
    parser.add_argument("folder", type=Path)
    parser.add_argument("--prompts", type=Path, help="BELLE's eval/eval_prompt.json")
    arguments = parser.parse_args()
    main(arguments.eval_set, arguments.folder, arguments.prompts)
