"""Convert BELLE's evaluation set into the layout the catalog's BELLE tasks test on.

    python scripts/belle_eval_set.py path/to/eval_set.json data/belle_eval [--prompts eval_prompt.json]

BELLE's `eval/eval_set.json` (github.com/LianjiaTech/BELLE) holds one JSON object per line, or one
JSON list, with `question`, `class` and `std_answer`. The study (Sun et al., arXiv 2304.08109,
17 April 2023) tested on the set as of commit fd6a876d (2023-04-17, "translation" merged into
"rewrite": 1,000 prompts, 10 classes, 369 with an empty reference; "closed qa" is written with a
non-breaking space): its class counts are the study's Table 1 (others 113 = math 75 + code 38,
rewrite 131, ...; the study's PDF in the same repository, docs/). Its judge prompts,
`eval/eval_prompt.json`, last changed before that date (0f856906, 2023-04-14). The script says
whether the files given are those versions (git blob ids).

The catalog's BELLE tasks read their test split from `data/belle_eval/test.jsonl` (relative to
where peftbench runs) with the training sets' columns: `instruction` (the question), `input`
(empty), `output` (the reference answer), `class` (the category the judge's score is averaged in,
its spaces made plain: "closed qa", the name the results and Appendix A's columns use) and an `id`
(the line number).

With `--prompts`, it also writes `judge_prompts.yaml`: BELLE's per-category judge message as
peftbench templates, built as BELLE's own scoring page built it (eval/template_html, 2023-04-05):
the category's prompt, the question, the reference (not for generation, brainstorming, rewrite),
the model's answer. configs/sweeps/belle-instruct.yaml carries the same mapping as its judge prompt.
"""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path

import yaml

REQUIRED = ("question", "class", "std_answer")
STUDY_BLOBS = {
    "0f81196b96100084271b28ffa9fced0fb8557f37": "eval_set.json as of fd6a876d (2023-04-17), the study's",
    "a98d7ca06ba626c4cff3effb0b6b2d29b39ac6c9": "eval_prompt.json as of 0f856906 (2023-04-14), the study's",
}
WITHOUT_REFERENCE = ("generation", "brainstorming", "rewrite")
"""The classes BELLE's scoring page asks about without the reference answer."""
ASK = "。请针对模型回答给出得分，顺便给出理由："


def read_items(path: Path) -> list[dict]:
    text = path.read_text(encoding="utf-8").strip()
    if text.startswith("["):
        return json.loads(text)
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def git_blob_id(path: Path) -> str:
    """The id git gives the file's bytes: compared with the upstream commit's."""
    data = path.read_bytes()
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def which_version(path: Path) -> str:
    return STUDY_BLOBS.get(git_blob_id(path), f"not the study's version (git blob {git_blob_id(path)[:8]})")


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
                "class": " ".join(item["class"].split()),  # "closed\xa0qa" -> "closed qa"
                "instruction": item["question"],
                "input": "",
                "output": item["std_answer"],
            }
        )
    return rows


def judge_prompts(items: list[dict]) -> dict[str, str]:
    """BELLE's per-class judge prompts as templates over {question}, {reference} and {answer}."""
    templates = {}
    for item in items:
        prompt = item["prompt"].replace("{", "{{").replace("}", "}}")
        if item["class"] in WITHOUT_REFERENCE:
            templates[item["class"]] = f"{prompt} {{question}}  模型回答： '{{answer}}'{ASK}"
        else:
            templates[item["class"]] = (
                f"{prompt} {{question}} 标准回答:{{reference}}  模型回答：' {{answer}}'{ASK}"
            )
    return templates


def write_atomically(path: Path, text: str) -> None:
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(text, encoding="utf-8")
    temporary.replace(path)


def main(source: Path, folder: Path, prompts: Path | None) -> None:
    rows = convert(read_items(source))
    folder.mkdir(parents=True, exist_ok=True)
    write_atomically(folder / "test.jsonl", "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    classes = sorted({r["class"] for r in rows})
    print(f"{source}: {which_version(source)}")
    print(f"{len(rows)} prompts in {len(classes)} classes ({', '.join(classes)}) -> {folder / 'test.jsonl'}")
    if prompts is not None:
        text = yaml.safe_dump(
            judge_prompts(read_items(prompts)), allow_unicode=True, width=1000, sort_keys=False
        )
        write_atomically(folder / "judge_prompts.yaml", text)
        print(f"{prompts}: {which_version(prompts)} -> {folder / 'judge_prompts.yaml'}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("eval_set", type=Path)
    parser.add_argument("folder", type=Path)
    parser.add_argument("--prompts", type=Path, help="BELLE's eval/eval_prompt.json")
    arguments = parser.parse_args()
    main(arguments.eval_set, arguments.folder, arguments.prompts)
