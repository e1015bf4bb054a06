"""Coreference documents: the CoNLL-2012 `*_conll` column files and the JSONL forms that hold the same.

Every reader gives one row per document in one form, the JSONL form of the e2e-coref family of models
(Lee et al., 2017), which is also what a local JSONL file for a `coreference` task holds:

    {"doc_key": "bc/cctv/00/cctv_0001_0", "sentences": [["He", "came", "."], ...],
     "clusters": [[[0, 0], [5, 6]], ...]}

`clusters` lists each entity's mentions as [first word, last word] (inclusive), words counted over
the whole document. Also read (`document_of`): the CLARIN.SI corpora as cjvt/senticoref and
cjvt/coref149 publish them on the hub: `words` (sentences of words, SentiCoref grouping them in
paragraphs), `mentions` (each with its `global_word_indices`) and `coref_clusters` (mention ids).

A `*_conll` file (CoNLL-2011/2012): `#begin document (NAME); part NNN` ... `#end document`, one
line per word with whitespace-separated columns (the word in the 4th, the coreference in the last),
a blank line between sentences. The coreference column is `-` or `|`-joined parts `(ID`, `ID)`,
`(ID)`. Each part of a document is a document of its own (doc_key `NAME_PART`), as the scorer has it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from peftbench.core.errors import PeftbenchError

BEGIN = re.compile(r"^#begin document \((?P<name>.*)\);\s*part (?P<part>\d+)\s*$")
COREF_PART = re.compile(r"^(\()?(\d+)(\))?$")
CONLL_SUFFIX = "conll"  # train.english.v4_gold_conll, dev.sl.conll, ...
WORD_COLUMN = 3


class CorefDataError(PeftbenchError, ValueError):
    """A coreference file that is not what its format says: the file, the line and what was wrong."""


def is_conll_file(path: str | Path) -> bool:
    return Path(path).name.endswith(CONLL_SUFFIX)


def read_conll(path: str | Path) -> list[dict[str, Any]]:
    """The documents of one `*_conll` file, in the JSONL form; a malformed line raises CorefDataError."""
    path = Path(path)
    documents: list[dict[str, Any]] = []
    current: ConllDocument | None = None
    with path.open(encoding="utf-8") as lines:
        for number, raw in enumerate(lines, start=1):
            line = raw.rstrip("\n")
            where = f"{path}:{number}"
            if line.startswith("#begin document"):
                if current is not None:
                    raise CorefDataError(f"{where}: a document begins before {current.key!r} ended.")
                match = BEGIN.match(line)
                if match is None:
                    raise CorefDataError(
                        f"{where}: expected '#begin document (NAME); part NNN', got {line!r}."
                    )
                current = ConllDocument(f"{match['name']}_{int(match['part'])}")
            elif line.startswith("#end document"):
                if current is None:
                    raise CorefDataError(f"{where}: '#end document' with no document open.")
                documents.append(current.finish(where))
                current = None
            elif not line.strip():
                if current is not None:
                    current.end_sentence()
            elif line.startswith("#"):
                continue  # other comments (CoNLL-U style metadata) carry nothing we read
            else:
                if current is None:
                    raise CorefDataError(
                        f"{where}: a word line outside '#begin document' ... '#end document'."
                    )
                current.add_word(line.split(), where)
    if current is not None:
        raise CorefDataError(f"{path}: document {current.key!r} has no '#end document' line.")
    return documents


class ConllDocument:
    """One document being read: its sentences so far and the mentions still open, per entity id."""

    def __init__(self, key: str):
        self.key = key
        self.sentences: list[list[str]] = [[]]
        self.words = 0
        self.open: dict[str, list[tuple[int, str]]] = {}  # entity id -> (first word, line) of open mentions
        self.clusters: dict[str, list[list[int]]] = {}

    def add_word(self, columns: list[str], where: str) -> None:
        if len(columns) <= WORD_COLUMN:
            raise CorefDataError(
                f"{where}: {len(columns)} column(s); a *_conll word line has the word in column "
                f"{WORD_COLUMN + 1} and the coreference in the last."
            )
        word, coref = columns[WORD_COLUMN], columns[-1]
        if coref != "-":
            for part in coref.split("|"):
                self.add_coref_part(part, where)
        self.sentences[-1].append(word)
        self.words += 1

    def add_coref_part(self, part: str, where: str) -> None:
        match = COREF_PART.match(part)
        if match is None or not (match[1] or match[3]):
            raise CorefDataError(
                f"{where}: coreference part {part!r}; allowed: '-' or '|'-joined '(ID', 'ID)', '(ID)'."
            )
        opens, entity, closes = bool(match[1]), match[2], bool(match[3])
        if opens:
            self.open.setdefault(entity, []).append((self.words, where))
        if closes:
            starts = self.open.get(entity)
            if not starts:
                raise CorefDataError(f"{where}: mention of entity {entity} closes but none is open.")
            self.clusters.setdefault(entity, []).append([starts.pop()[0], self.words])

    def end_sentence(self) -> None:
        if self.sentences[-1]:
            self.sentences.append([])

    def finish(self, where: str) -> dict[str, Any]:
        still_open = sorted((at, entity) for entity, starts in self.open.items() for _, at in starts)
        if still_open:
            at, entity = still_open[0]
            raise CorefDataError(
                f"{where}: document {self.key!r} ends with a mention of entity {entity} still open "
                f"(opened at {at})."
            )
        sentences = [s for s in self.sentences if s]
        clusters = [sorted(mentions) for mentions in self.clusters.values()]
        return {"doc_key": self.key, "sentences": sentences, "clusters": clusters}


def document_of(row: Mapping[str, Any], words_column: str, clusters_column: str) -> dict[str, Any]:
    """A row of any supported form as (doc_key, sentences, clusters) in the JSONL form, checked.

    Raises ValueError saying what is wrong (the caller adds which task, split and row).
    """
    sentences = flat_sentences(row[words_column])
    clusters = row[clusters_column] or []
    if clusters and clusters[0] and isinstance(clusters[0][0], str):  # cjvt: mention ids
        clusters = clusters_from_mention_ids(clusters, row.get("mentions") or [])
    words = sum(len(s) for s in sentences)
    spans = []
    for entity in clusters:
        mentions = []
        for mention in entity:
            if len(mention) != 2 or not 0 <= mention[0] <= mention[1] < words:
                raise ValueError(
                    f"mention {list(mention)} is not [first word, last word] within its {words} words"
                )
            mentions.append((int(mention[0]), int(mention[1])))
        spans.append(mentions)
    key = row.get("doc_key", row.get("id_doc", row.get("id")))
    return {"doc_key": None if key is None else str(key), "sentences": sentences, "clusters": spans}


def flat_sentences(words: Sequence[Any]) -> list[list[str]]:
    """Sentences of words; SentiCoref's paragraphs of sentences are flattened into their sentences."""
    if words and words[0] and not isinstance(words[0][0], str):
        return [list(sentence) for paragraph in words for sentence in paragraph]
    return [list(sentence) for sentence in words]


def clusters_from_mention_ids(
    clusters: Iterable[Sequence[str]], mentions: Sequence[Mapping[str, Any]]
) -> list:
    """cjvt's clusters of mention ids as [first, last] word spans (a discontinuous mention: its extent)."""
    where = {}
    for mention in mentions:
        indices = mention["mention_data"]["global_word_indices"]
        where[mention["id_mention"]] = [min(indices), max(indices)]
    try:
        return [[where[mention_id] for mention_id in entity] for entity in clusters]
    except KeyError as err:
        raise ValueError(f"cluster names mention {err.args[0]!r}, which `mentions` lacks") from None


def conll_split(task_name: str, files: Mapping[str, str], source_split: str) -> Any:
    """One split (a datasets split expression, e.g. 'train[:80%]') of `*_conll` files, as a Dataset."""
    from datasets import Dataset, ReadInstruction, concatenate_datasets

    read = {name: Dataset.from_list(read_conll(file)) for name, file in files.items()}
    try:
        parts = ReadInstruction.from_spec(source_split).to_absolute({k: len(v) for k, v in read.items()})
    except (ValueError, KeyError) as err:
        raise ValueError(
            f"Task {task_name!r}: split {source_split!r} over the *_conll files {sorted(files)}: {err}"
        ) from None
    return concatenate_datasets([read[p.splitname].select(range(p.from_, p.to)) for p in parts])
