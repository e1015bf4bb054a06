"""BELLE's evaluation set and judge prompts, converted into the layout the catalog's BELLE tasks read.

BELLE's `eval/eval_set.json` (github.com/LianjiaTech/BELLE) holds one JSON object per line, or one
JSON list, with `question`, `class` and `std_answer`. The study (Sun et al., arXiv 2304.08109,
17 April 2023) tested on the set as of commit fd6a876d (2023-04-17, "translation" merged into
"rewrite": 1,000 prompts, 10 classes, 369 with an empty reference; "closed qa" is written with a
non-breaking space): its class counts are the study's Table 1 (others 113 = math 75 + code 38,
rewrite 131, ...; the study's PDF in the same repository, docs/). Its judge prompts,
`eval/eval_prompt.json`, last changed before that date (0f856906, 2023-04-14). Commits and git
blob ids checked against LianjiaTech/BELLE (`git ls-tree fd6a876d eval/eval_set.json`: blob
0f81196b, 677,585 bytes; `git ls-tree 0f856906 eval/eval_prompt.json`: blob a98d7ca0, 3,259 bytes).

The catalog's BELLE tasks read their test split from `data/belle_eval/test.jsonl` with the training
sets' columns: `instruction` (the question), `input` (empty), `output` (the reference answer),
`class` (the category the judge's score is averaged in, its spaces made plain: "closed qa", the
name the results and Appendix A's columns use) and an `id` (the line number).

`judge_prompts.yaml` holds BELLE's per-category judge message as peftbench templates, built as
BELLE's own scoring page built it (eval/template_html, 2023-04-05): the category's prompt, the
question, the reference (not for generation, brainstorming, rewrite), the model's answer.
configs/sweeps/belle-instruct.yaml carries the same mapping as its judge prompt.

`peftbench fetch` downloads both files and converts them with this module (tools/pinned_files.py);
scripts/belle_eval_set.py converts copies downloaded by hand.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping

import yaml

from peftbench.core.errors import PeftbenchError

REPOSITORY = "LianjiaTech/BELLE"
EVAL_SET = "eval/eval_set.json"
EVAL_PROMPTS = "eval/eval_prompt.json"
EVAL_SET_COMMIT = "fd6a876d3b16b4706ce5c87aab7524c7df12ba04"
EVAL_SET_BLOB = "0f81196b96100084271b28ffa9fced0fb8557f37"
EVAL_PROMPTS_COMMIT = "0f856906e5f28004cb4da318d9deac20e511fe72"
EVAL_PROMPTS_BLOB = "a98d7ca06ba626c4cff3effb0b6b2d29b39ac6c9"
STUDY_BLOBS = {
    EVAL_SET_BLOB: "eval_set.json as of fd6a876d (2023-04-17), the study's",
    EVAL_PROMPTS_BLOB: "eval_prompt.json as of 0f856906 (2023-04-14), the study's",
}
TEST_FILE = "test.jsonl"
PROMPTS_FILE = "judge_prompts.yaml"
REQUIRED = ("question", "class", "std_answer")
WITHOUT_REFERENCE = ("generation", "brainstorming", "rewrite")
"""The classes BELLE's scoring page asks about without the reference answer."""
ASK = "。请针对模型回答给出得分，顺便给出理由："


class BelleEvalError(PeftbenchError):
    """An item of BELLE's evaluation set without a key the conversion needs."""


def read_items(text: str) -> list[dict]:
    """The items of a BELLE eval file: one JSON list, or one JSON object per line."""
    text = text.strip()
    if text.startswith("["):
        return json.loads(text)
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def git_blob_id(data: bytes) -> str:
    """The id git gives these bytes: compared with the upstream commit's."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def which_version(data: bytes) -> str:
    blob = git_blob_id(data)
    return STUDY_BLOBS.get(blob, f"not the study's version (git blob {blob[:8]})")


def convert(items: list[dict]) -> list[dict]:
    """The eval set's items as the catalog's test rows."""
    rows = []
    for i, item in enumerate(items):
        missing = [k for k in REQUIRED if k not in item]
        if missing:
            raise BelleEvalError(
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


def jsonl_text(rows: list[dict]) -> str:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)


def judge_prompts_text(items: list[dict]) -> str:
    return yaml.safe_dump(judge_prompts(items), allow_unicode=True, width=1000, sort_keys=False)


def catalog_layout(upstream: Mapping[str, bytes]) -> dict[str, str]:
    """BELLE's two eval files (upstream path -> bytes) as the catalog's folder (file name -> text)."""
    rows = convert(read_items(upstream[EVAL_SET].decode("utf-8")))
    prompts = read_items(upstream[EVAL_PROMPTS].decode("utf-8"))
    return {TEST_FILE: jsonl_text(rows), PROMPTS_FILE: judge_prompts_text(prompts)}
