"""The CorefUD reader (tasks/coreference/corefud.py) on small files written here: what CorefUD's
format has that the real SentiCoref slice (tests/test_real_slices.py) does not show."""

from __future__ import annotations

from pathlib import Path

import pytest

from peftbench.tasks.coreference.conll import CorefDataError
from peftbench.tasks.coreference.corefud import read_corefud


def word(number: str, form: str, entity: str = "") -> str:
    return "\t".join([number, form, "_", "_", "_", "_", "_", "_", "_", f"Entity={entity}" if entity else "_"])


def written(tmp_path: Path, *lines: str) -> Path:
    path = tmp_path / "doc.conllu"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_paragraphs_multiword_tokens_nesting_and_a_discontinuous_mention(tmp_path: Path):
    path = written(
        tmp_path,
        "# newdoc id = d1",
        "# newpar",
        word("1", "Ana", "(e1-person-1)"),
        word("2-3", "vanjo"),  # a multiword token's range: its words follow
        word("2", "v"),
        word("3", "njo", "(e2-place-1(e1-person-1)"),
        word("4", "hiša", "e2)"),
        "",
        "# newpar",
        word("1", "Velika", "(e3[1/2]-thing-1)"),
        word("2", "in", ""),
        word("3", "stara", "(e3[2/2]-thing-1)"),
        "",
        "# newdoc id = d2",
        word("1", "Ona", "(e1-person-1)"),
        "",
    )
    first, second = read_corefud(path)
    assert first["id_doc"] == "d1"
    assert first["words"] == [[["Ana", "v", "njo", "hiša"]], [["Velika", "in", "stara"]]]
    assert first["coref_clusters"] == [[[0, 0], [2, 2]], [[2, 3]], [[4, 6]]]  # e3: its extent
    assert second == {"id_doc": "d2", "words": [[["Ona"]]], "coref_clusters": [[[0, 0]]]}


@pytest.mark.parametrize(
    ("lines", "says"),
    [
        ([word("1", "x", "e1)")], "doc.conllu:2: mention of entity 'e1' closes but none is open"),
        ([word("1", "x", "(e1-a-1")], "document 'd' ends with a mention of entity 'e1' still open"),
        (["1\tx\t_"], "doc.conllu:2: 3 tab-separated column(s); CoNLL-U has 10"),
        ([word("1.1", "_", "(e1-a-1)")], "an empty node carries a mention"),
    ],
)
def test_a_malformed_file_names_the_file_line_and_what_is_wrong(tmp_path: Path, lines: list[str], says: str):
    with pytest.raises(CorefDataError, match=says.replace("(", r"\(").replace(")", r"\)")):
        read_corefud(written(tmp_path, "# newdoc id = d", *lines))


def test_a_word_before_any_document_is_an_error(tmp_path: Path):
    with pytest.raises(CorefDataError, match=r"doc.conllu:1: a word line before any '# newdoc"):
        read_corefud(written(tmp_path, word("1", "x")))
