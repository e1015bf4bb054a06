"""CorefUD `.conllu` files (CoNLL-U with coreference in the MISC column), read as cjvt's hub rows.

This is the form SloBENCH evaluates SentiCoref and coref149 in and the CorefUD conversion of
SentiCoref (Klemen & Žitnik 2024, CLARIN.SI, CC BY-SA 4.0) is published in: `# newdoc id = NAME`
starts a document, `# newpar` a paragraph, a blank line ends a sentence, and a word's MISC column
holds `Entity=` with `(eid-etype-...` where a mention opens and `eid)` where it closes, several run
together (`e1)e3)(e6-generic-1)`). A discontinuous mention's parts carry `[k/n]` after the eid; the
mention is read as its extent, as documents.py reads cjvt's discontinuous mentions.

A document becomes one row in the columns cjvt/senticoref gives on the hub: `id_doc`, `words`
(paragraphs of sentences of words) and `coref_clusters`, here each mention already as [first word,
last word] counted over the document, so the catalog's `senticoref` and `coref149` entries read a
`.conllu` file with their columns unchanged. Multiword-token ranges (`1-2`) are skipped; an empty
node (`8.1`) carrying a mention is an error, as it has no word to point at.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from peftbench.tasks.coreference.conll import CorefDataError

CONLLU_SUFFIX = ".conllu"
NEWDOC = re.compile(r"^#\s*newdoc\s+id\s*=\s*(?P<name>\S+)")
ENTITY_PART = re.compile(r"\((?P<opens>[^()]+)(?P<single>\))?|(?P<closes>[^()]+)\)")
DISCONTINUOUS = re.compile(r"^(?P<eid>[^\[]+)\[(?P<part>\d+)/(?P<parts>\d+)\]$")
MISC_COLUMN = 9


def is_corefud_file(path: str | Path) -> bool:
    return Path(path).name.endswith(CONLLU_SUFFIX)


def read_corefud(path: str | Path) -> list[dict[str, Any]]:
    """The documents of one CorefUD file as cjvt-column rows; a malformed line raises CorefDataError."""
    path = Path(path)
    documents: list[CorefudDocument] = []
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            read_line(documents, line.rstrip("\n"), f"{path}:{number}")
    return [document.finish(f"{path}: end") for document in documents]


def read_line(documents: list[CorefudDocument], line: str, where: str) -> None:
    newdoc = NEWDOC.match(line)
    if newdoc:
        if documents:
            documents[-1].finish(where)
        documents.append(CorefudDocument(newdoc["name"]))
    elif line.startswith("# newpar") and documents:
        documents[-1].new_paragraph()
    elif not line.strip():
        if documents:
            documents[-1].end_sentence()
    elif not line.startswith("#"):
        if not documents:
            raise CorefDataError(f"{where}: a word line before any '# newdoc id = NAME'.")
        documents[-1].add_word(line.split("\t"), where)


class CorefudDocument:
    """One document being read: paragraphs of sentences so far, open mentions per eid, finished clusters."""

    def __init__(self, name: str):
        self.name = name
        self.paragraphs: list[list[list[str]]] = [[[]]]
        self.words = 0
        self.open: dict[str, list[int]] = {}  # eid (with its [k/n]) -> first words of open mentions
        self.parts: dict[str, list[tuple[int, int]]] = {}  # discontinuous eid[/n] -> parts closed so far
        self.clusters: dict[str, list[list[int]]] = {}

    def add_word(self, columns: list[str], where: str) -> None:
        if len(columns) != 10:
            raise CorefDataError(f"{where}: {len(columns)} tab-separated column(s); CoNLL-U has 10.")
        if "-" in columns[0]:
            return  # a multiword token's range line; its words follow
        entity = next((f[7:] for f in columns[MISC_COLUMN].split("|") if f.startswith("Entity=")), "")
        if "." in columns[0]:
            if entity:
                raise CorefDataError(f"{where}: an empty node carries a mention ({entity!r}); not read.")
            return
        for match in ENTITY_PART.finditer(entity):
            self.read_part(match, where)
        self.paragraphs[-1][-1].append(columns[1])
        self.words += 1

    def read_part(self, match: re.Match[str], where: str) -> None:
        if match["opens"] is not None:
            eid = match["opens"].split("-", 1)[0]
            self.open.setdefault(eid, []).append(self.words)
            if match["single"]:
                self.close(eid, where)
        else:
            self.close(match["closes"], where)

    def close(self, eid: str, where: str) -> None:
        starts = self.open.get(eid)
        if not starts:
            raise CorefDataError(f"{where}: mention of entity {eid!r} closes but none is open.")
        span = (starts.pop(), self.words)
        piece = DISCONTINUOUS.match(eid)
        if piece is None:
            self.clusters.setdefault(eid, []).append(list(span))
            return
        group = f"{piece['eid']}/{piece['parts']}"
        self.parts.setdefault(group, []).append(span)
        if len(self.parts[group]) == int(piece["parts"]):
            pieces = self.parts.pop(group)
            extent = [min(p[0] for p in pieces), max(p[1] for p in pieces)]
            self.clusters.setdefault(piece["eid"], []).append(extent)

    def end_sentence(self) -> None:
        if self.paragraphs[-1][-1]:
            self.paragraphs[-1].append([])

    def new_paragraph(self) -> None:
        if any(self.paragraphs[-1]):
            self.paragraphs.append([[]])

    def finish(self, where: str) -> dict[str, Any]:
        still_open = sorted(eid for eid, starts in {**self.open, **self.parts}.items() if starts)
        if still_open:
            raise CorefDataError(
                f"{where}: document {self.name!r} ends with a mention of entity {still_open[0]!r} still open."
            )
        paragraphs = [[s for s in paragraph if s] for paragraph in self.paragraphs]
        return {
            "id_doc": self.name,
            "words": [p for p in paragraphs if p],
            "coref_clusters": [sorted(mentions) for mentions in self.clusters.values()],
        }
