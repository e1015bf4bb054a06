"""Rows of the original SuperGLUE JSONL reshaped into the flat rows our task types read.

SuperGLUE's own files (and the Slovene translation on CLARIN.SI, which keeps their schema) nest or
spread what a classifier needs; a DataSource's `layout` names the reshaping:

- `superglue_multirc`: a passage with questions with candidate answers -> one row per answer:
  `context` (the question, a newline, the passage), `answer`, `label` (1: the answer is right;
  None on unlabelled test rows), `idx` "<passage>-<question>-<answer>" (SuperGLUE's three indices),
  `question_idx` "<passage>-<question>" (the question each answer belongs to: MultiRC's `em`),
  plus `paragraph` and `question`. A pair classification of (context, answer), as MultiRC's
  baselines score each answer on its own.
- `superglue_wsc`: `text` with `target: {span1_text, span2_text, ...}` -> `text` and `question`,
  "<pronoun> → <candidate>?" (span2 → span1), a pair classification. The spans are named by their
  text, not their word indices, which a translation need not keep.
- `superglue_wic`: `word`, `sentence1`, `sentence2` -> `context` "<word>: <sentence1>" and
  `sentence2`, a pair classification (same sense or not).
- `superglue_record`: a passage with its entity spans and its cloze queries -> one row per query:
  `idx` (the query's), `passage`, `query` (with `@placeholder`), `candidates` (the distinct entity
  texts of the passage, in order of first mention: spans of the same text collapse), `answers` (the
  distinct gold texts; empty on unlabelled test rows). Spans are SuperGLUE's character offsets,
  `end` inclusive. For the `cloze_choice` task type.

Each keeps `label` as it was (bool or 0/1; MultiRC's read as 0/1, as the Slovene archive writes it
in several spellings) and reads rows in batches (`datasets.Dataset.map`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Batch = dict[str, list[Any]]


def _rows(batch: Batch) -> list[dict[str, Any]]:
    return [dict(zip(batch, values, strict=True)) for values in zip(*batch.values(), strict=True)]


def in_order(items: Any) -> list[Any]:
    """SuperGLUE's list, or the Slovene archive's dict of the same items keyed by position ("0", "1",
    ...; SuperGLUE-HumanT and -GoogleMT json/MultiRC/, see tasks/catalog.py), in position order."""
    if isinstance(items, dict):
        return [items[key] for key in sorted(items, key=int) if items[key] is not None]
    return list(items)


def whole_number(value: Any) -> int:
    """SuperGLUE's 0/1/5, or the Slovene archive's spellings of them in MultiRC: 1.0, "0.0", "16,0"."""
    if isinstance(value, bool | int):
        return int(value)
    return int(float(str(value).replace(",", ".")))


def index_text(value: Any, default: int) -> str:
    """An index as an id part: 5, 5.0 and "5,0" all read "5"."""
    return str(whole_number(value)) if value is not None else str(default)


def binary_label(value: Any) -> int | None:
    """A MultiRC answer label as 0/1; None stays None (an unlabelled test row)."""
    return None if value is None else whole_number(value)


def multirc_rows(batch: Batch) -> Batch:
    """One row per candidate answer. A question without its `question` text or an answer without its
    `text` (1 and 11 in the Slovene archive's MultiRC) is left out: there is nothing to classify."""
    columns = ("idx", "question_idx", "paragraph", "question", "context", "answer", "label")
    out: Batch = {k: [] for k in columns}
    for row in _rows(batch):
        passage = row["passage"]
        for q_i, question in enumerate(in_order(passage["questions"])):
            if question.get("question") is None:
                continue
            question_idx = f"{index_text(row['idx'], 0)}-{index_text(question.get('idx'), q_i)}"
            for a_i, answer in enumerate(in_order(question["answers"])):
                if answer.get("text") is None:
                    continue
                out["idx"].append(f"{question_idx}-{index_text(answer.get('idx'), a_i)}")
                out["question_idx"].append(question_idx)
                out["paragraph"].append(passage["text"])
                out["question"].append(question["question"])
                out["context"].append(f"{question['question']}\n{passage['text']}")
                out["answer"].append(answer["text"])
                out["label"].append(binary_label(answer.get("label")))
    return out


def wsc_rows(batch: Batch) -> Batch:
    rows = _rows(batch)
    out: Batch = {
        "idx": [r["idx"] for r in rows],
        "text": [r["text"] for r in rows],
        "question": [f"{r['target']['span2_text']} → {r['target']['span1_text']}?" for r in rows],
    }
    if "label" in batch:
        out["label"] = list(batch["label"])
    return out


def wic_rows(batch: Batch) -> Batch:
    rows = _rows(batch)
    out: Batch = {
        "idx": [r["idx"] for r in rows],
        "context": [f"{r['word']}: {r['sentence1']}" for r in rows],
        "sentence2": [r["sentence2"] for r in rows],
    }
    if "label" in batch:
        out["label"] = list(batch["label"])
    return out


def record_rows(batch: Batch) -> Batch:
    out: Batch = {k: [] for k in ("idx", "passage", "query", "candidates", "answers")}
    for row in _rows(batch):
        text = row["passage"]["text"]
        spans = [text[e["start"] : e["end"] + 1] for e in row["passage"]["entities"]]
        candidates = list(dict.fromkeys(spans))
        for q_i, qa in enumerate(row["qas"]):
            out["idx"].append(qa.get("idx", f"{row['idx']}-{q_i}"))
            out["passage"].append(text)
            out["query"].append(qa["query"])
            out["candidates"].append(candidates)
            out["answers"].append(list(dict.fromkeys(a["text"] for a in qa.get("answers") or [])))
    return out


LAYOUTS: dict[str, Callable[[Batch], Batch]] = {
    "superglue_record": record_rows,
    "superglue_multirc": multirc_rows,
    "superglue_wsc": wsc_rows,
    "superglue_wic": wic_rows,
}


def apply_layout(data: Any, layout: str | None) -> Any:
    """`data` (a datasets.Dataset) reshaped by `layout`, or as it is without one.

    In memory, never from datasets' cache: datasets fingerprints a packaged function by its name,
    not its code, so after an upgrade that changed a layout it would hand back the rows the old
    layout made (seen: MultiRC without its new `question_idx`). Reshaping is cheap next to
    tokenizing, which has its own cache keyed by content (tasks/token_cache.py)."""
    if layout is None:
        return data
    return data.map(
        LAYOUTS[layout],
        batched=True,
        remove_columns=data.column_names,
        load_from_cache_file=False,
        keep_in_memory=True,
    )
