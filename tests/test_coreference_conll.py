"""The CoNLL-2012 `*_conll` reader: the same documents as the JSONL form, a task split, malformed files."""

from __future__ import annotations

from pathlib import Path

import pytest

from peftbench.core.spec import DataSource
from peftbench.tasks.coreference.conll import CorefDataError, is_conll_file, read_conll
from peftbench.tasks.sources import load_split
from tests.coreference_fixture import FIXTURE, as_sets, coref, rows


def test_conll_file_reads_as_the_same_documents_as_the_jsonl_form():
    read = read_conll(FIXTURE / "test.v4_gold_conll")
    expected = rows("test")
    assert [d["doc_key"] for d in read] == [f"{r['doc_key']}_0" for r in expected]  # NAME_PART
    for got, want in zip(read, expected, strict=True):
        assert got["sentences"] == want["sentences"]
        assert as_sets(got["clusters"]) == as_sets(want["clusters"])


def test_conll_files_load_as_a_task_split_with_slicing(tmp_path: Path):
    task = coref(
        source=DataSource(files={"test": str(FIXTURE / "test.v4_gold_conll")}), splits={"test": "test[1:]"}
    )
    split = load_split(task, "test")
    assert split["doc_key"] == ["teacher_0"]


@pytest.mark.parametrize(
    ("lines", "line", "says"),
    [
        (["#begin document (d); part 000", "d 0 He", "#end document"], 2, "column 4"),
        (["#begin document (d); part 000", "d 0 0 He - - 0)", "#end document"], 2, "closes but none is open"),
        (["#begin document (d); part 000", "d 0 0 He - - (x)", "#end document"], 2, "'(x)'"),
        (["#begin document (d); part 000", "d 0 0 He - - (1", "#end document"], 3, "entity 1 still open"),
        (["d 0 0 He - - -"], 1, "outside"),
        (["#begin document d part 0"], 1, "#begin document (NAME); part NNN"),
    ],
)
def test_a_malformed_conll_file_names_the_file_and_line(
    tmp_path: Path, lines: list[str], line: int, says: str
):
    path = tmp_path / "bad.v4_gold_conll"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(CorefDataError) as caught:
        read_conll(path)
    assert f"{path}:{line}:" in str(caught.value) and says in str(caught.value)


def test_comments_and_blank_lines_between_documents_are_skipped(tmp_path: Path):
    path = tmp_path / "two.v4_gold_conll"
    lines = [
        "# a comment before anything",
        "",
        "#begin document (a); part 001",
        "# sent_id = 1",
        "a 0 0 He - - (7)",
        "",
        "",
        "a 0 0 slept - - -",
        "#end document",
        "",
        "#begin document (b); part 000",
        "b 0 0 Ana - - (1|(2)",
        "b 0 0 Novak - - 1)",
        "#end document",
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert read_conll(path) == [
        {"doc_key": "a_1", "sentences": [["He"], ["slept"]], "clusters": [[[0, 0]]]},
        # entities in the order their first mention closes: 2 on "Ana", 1 on "Novak"
        {"doc_key": "b_0", "sentences": [["Ana", "Novak"]], "clusters": [[[0, 0]], [[0, 1]]]},
    ]
    assert is_conll_file(path) and is_conll_file("dev.sl.conll") and not is_conll_file("train.jsonl")


def test_a_file_that_ends_inside_a_document_says_which(tmp_path: Path):
    path = tmp_path / "cut.v4_gold_conll"
    path.write_text("#begin document (d); part 000\nd 0 0 He - - -\n", encoding="utf-8")
    with pytest.raises(CorefDataError, match=r"document 'd_0' has no '#end document' line"):
        read_conll(path)
