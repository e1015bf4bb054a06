"""The CoNLL-2012 `*_conll` column files of coreference corpora, read as documents in the one form
every reader gives (documents.py: doc_key, sentences of words, clusters of [first word, last word]).

A `*_conll` file (CoNLL-2011/2012): `#begin document (NAME); part NNN` ... `#end document`, one
line per word with whitespace-separated columns (the word in the 4th, the coreference in the last),
a blank line between sentences. The coreference column is `-` or `|`-joined parts `(ID`, `ID)`,
`(ID)`. Each part of a document is a document of its own (doc_key `NAME_PART`), as the scorer has it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
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
    reader = ConllReader()
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            reader.read_line(line.rstrip("\n"), f"{path}:{number}")
    return reader.documents_read(path)


class ConllReader:
    """The documents of one file read so far, and the one being read (None between documents)."""

    def __init__(self) -> None:
        self.documents: list[dict[str, Any]] = []
        self.current: ConllDocument | None = None

    def read_line(self, line: str, where: str) -> None:
        if line.startswith("#begin document"):
            self.begin(line, where)
        elif line.startswith("#end document"):
            self.end(where)
        elif not line.strip():
            if self.current is not None:
                self.current.end_sentence()
        elif not line.startswith("#"):  # other comments (CoNLL-U style metadata) carry nothing we read
            self.open_document(where).add_word(line.split(), where)

    def begin(self, line: str, where: str) -> None:
        if self.current is not None:
            raise CorefDataError(f"{where}: a document begins before {self.current.key!r} ended.")
        match = BEGIN.match(line)
        if match is None:
            raise CorefDataError(f"{where}: expected '#begin document (NAME); part NNN', got {line!r}.")
        self.current = ConllDocument(f"{match['name']}_{int(match['part'])}")

    def end(self, where: str) -> None:
        if self.current is None:
            raise CorefDataError(f"{where}: '#end document' with no document open.")
        self.documents.append(self.current.finish(where))
        self.current = None

    def open_document(self, where: str) -> ConllDocument:
        if self.current is None:
            raise CorefDataError(f"{where}: a word line outside '#begin document' ... '#end document'.")
        return self.current

    def documents_read(self, path: Path) -> list[dict[str, Any]]:
        """Every document of the file, once it has ended; one still open at its end is an error."""
        if self.current is not None:
            raise CorefDataError(f"{path}: document {self.current.key!r} has no '#end document' line.")
        return self.documents


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


def conll_split(
    task_name: str,
    files: Mapping[str, str],
    source_split: str,
    reader: Callable[[str], list[dict[str, Any]]] = read_conll,
) -> Any:
    """One split (a datasets split expression, e.g. 'train[:80%]') of document files, as a Dataset.

    `reader` reads one file into documents: `*_conll` files by default, CorefUD's by corefud.py.
    """
    from datasets import Dataset, ReadInstruction, concatenate_datasets

    read = {name: Dataset.from_list(reader(file)) for name, file in files.items()}
    try:
        parts = ReadInstruction.from_spec(source_split).to_absolute({k: len(v) for k, v in read.items()})
    except (ValueError, KeyError) as err:
        raise ValueError(
            f"Task {task_name!r}: split {source_split!r} over the coreference files {sorted(files)}: {err}"
        ) from None
    return concatenate_datasets([read[p.splitname].select(range(p.from_, p.to)) for p in parts])
