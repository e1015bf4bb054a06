"""The catalog's HuLU tasks on real upstream rows, read as a user's copy of the archive is read.

tests/fixtures/upstream/hulu/<Task>/ holds the first rows of nytud/<Task>'s own data files, in the
repository's layout (data/*.json, JSON lists, every field as upstream writes it; licence and commit
beside them; scripts/vendor_real_slices.py cut them). Each catalog task is pointed at them with
`files:` (the hub offline), its sentence column renamed where the GitHub files name it `Sent`
(the hub copies call it `sentence`), nothing else changed: its labels read upstream's label strings.
The CI test trains one task end to end; `make smoke-real` trains every task type on the real slices.

Coreference: SloBENCH's own SentiCoref sample (tests/fixtures/upstream/slobench/eval_coreference/, the
CorefUD files of clarinsi/slobench-eval-docker) read through the catalog's `senticoref`, trained on in
CI, and scored by our scorer beside the figures SloBENCH's README prints for its official scorer.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from peftbench.core.spec import DataSource, TaskSpec
from peftbench.run.one import run_one
from peftbench.tasks import TASK_CATALOG
from peftbench.tasks.labels import choice_index, label_index
from peftbench.tasks.sources import load_split
from tests.conftest import demo_run

UPSTREAM = Path(__file__).parent / "fixtures" / "upstream" / "hulu"
FILES = {  # catalog task -> (repository, train file, dev file)
    "hucola": ("HuCOLA", "data/cola_train.json", "data/cola_dev.json"),
    "hucopa": ("HuCoPA", "data/train.json", "data/val.json"),
    "hurte": ("HuRTE", "data/rte_train.json", "data/rte_dev.json"),
    "husst": ("HuSST", "data/sst_train.json", "data/sst_dev.json"),
    "huwnli": ("HuWNLI", "data/train.json", "data/dev.json"),
}
GITHUB_COLUMNS = {"sentence": "Sent"}  # the hub's name -> the GitHub files' name
UPSTREAM_LABELS = {  # what nytud's files hold (tasks/catalog.py): strings, every one
    "hucola": {"0", "1"},
    "hucopa": {"1", "2"},
    "hurte": {"0", "1"},
    "husst": {"negative", "neutral", "positive"},
    "huwnli": {"0", "1"},
}


def on_upstream(name: str) -> TaskSpec:
    """The catalog task over the vendored upstream files: 18 rows train, 6 select, the dev slice tests."""
    repo, train, dev = FILES[name]
    task = TASK_CATALOG[name]
    return task.model_copy(
        update={
            "source": DataSource(
                files={"train": str(UPSTREAM / repo / train), "validation": str(UPSTREAM / repo / dev)}
            ),
            "splits": {"train": "train[:18]", "validation": "train[18:]", "test": "validation"},
            "text_columns": [GITHUB_COLUMNS.get(c, c) for c in task.text_columns],
        }
    )


@pytest.mark.parametrize("name", sorted(FILES))
def test_each_hulu_slice_loads_with_the_catalogs_columns_and_labels(name: str):
    task = on_upstream(name)
    splits = {split: load_split(task, split) for split in ("train", "validation", "test")}
    assert [len(d) for d in splits.values()] == [18, 6, 12]
    for data in splits.values():
        columns = set(data.column_names)
        assert set(task.text_columns) | {task.label_column} | set(task.choice_columns or ()) <= columns
        values = data[task.label_column]
        assert {type(v) for v in values} == {str} and set(values) <= UPSTREAM_LABELS[name]
        if task.type == "multiple_choice":
            assert {choice_index(task.labels, v, 2) for v in values} <= {0, 1}
        else:
            assert {label_index(task.labels, v) for v in values} <= set(range(len(task.labels or ())))


def test_husst_labels_are_the_class_names_and_hucopa_counts_its_choices_from_one():
    """The two readings the label rule must get right: HuSST's names by name, HuCoPA's "1"/"2" by name
    (the first choice is "1", not index 1)."""
    sst, copa = on_upstream("husst"), on_upstream("hucopa")
    first = load_split(sst, "train")[0]
    assert label_index(sst.labels, first["label"]) == sst.labels.index(first["label"])  # type: ignore[union-attr]
    assert choice_index(copa.labels, "1", 2) == 0 and choice_index(copa.labels, "2", 2) == 1


def run_on_upstream(name: str, folder: Path, steps: int) -> dict[str, float]:
    spec = demo_run("lora", name, max_steps=steps, max_eval_samples=None)
    spec = spec.model_copy(update={"task": on_upstream(name)})
    result = run_one(spec, folder)
    assert result.status == "success", result.error
    assert spec.task.metric in result.test and spec.task.metric in result.validation
    return result.test


def test_a_real_hulu_slice_trains_and_scores_end_to_end(tmp_path: Path):
    """The small cut CI runs: HuCOLA's real rows, MiniLM with LoRA, two steps, scored on the dev slice."""
    test = run_on_upstream("hucola", tmp_path, steps=2)
    assert -1.0 <= test["mcc"] <= 1.0 and 0.0 <= test["accuracy"] <= 1.0


@pytest.mark.slow
@pytest.mark.parametrize("name", ["hucopa", "hurte", "husst", "huwnli"])
def test_smoke_real_every_hulu_task_type_trains_and_scores(name: str, tmp_path: Path):
    """`make smoke-real`: the other HuLU tasks (sentence pairs, three classes, multiple choice)."""
    test = run_on_upstream(name, tmp_path, steps=4)
    metric = TASK_CATALOG[name].metric
    assert (-1.0 if metric == "mcc" else 0.0) <= test[metric] <= 1.0, test


# SentiCoref as SloBENCH evaluates it: clarinsi/slobench-eval-docker's sample ground truth (CorefUD).
SLOBENCH_COREF = Path(__file__).parent / "fixtures" / "upstream" / "slobench" / "eval_coreference"
CARD_FIRST_SENTENCES = [  # huggingface.co/datasets/cjvt/senticoref card, its data instance (words[0][:2])
    ["Evropska", "komisija", "mora", "narediti", "analizo", "vzrokov", "rasti", "cen", "hrane", ",",
     "menita", "kmetijski", "minister", "Jarc", "in", "njegov", "francoski", "kolega", "."],
    ["Bo", "evropska", "komisija", "analizirala", "vzroke", "rasti", "cen", "hrane", "."],
]  # fmt: skip


def senticoref_on_slobench() -> TaskSpec:
    """The catalog's `senticoref`, only its files changed: the one real document serves every split."""
    return TASK_CATALOG["senticoref"].model_copy(
        update={
            "source": DataSource(files={"train": str(SLOBENCH_COREF / "ground_truth.conllu")}),
            "splits": {"train": "train", "validation": "train", "test": "train"},
        }
    )


def mentions_and_entities_in(path: Path) -> tuple[int, int]:
    """Counted off the raw file: opening brackets in its `Entity=` values, and the distinct eids."""
    raw = path.read_text(encoding="utf-8").splitlines()
    values = [line.rsplit("\t", 1)[-1][7:] for line in raw if "\tEntity=" in line]
    opened = [part.split("-")[0] for value in values for part in value.split("(")[1:]]
    return len(opened), len(set(opened))


def test_the_real_senticoref_document_reads_in_the_catalogs_columns():
    """The CorefUD file gives the row cjvt/senticoref gives on the hub: the catalog's columns, the card's
    words in paragraphs of sentences, and the file's own mentions (one per opening bracket)."""
    from peftbench.tasks.coreference.documents import document_of

    task = senticoref_on_slobench()
    rows = load_split(task, "train")
    assert len(rows) == 1
    row = rows[0]
    assert row["id_doc"] == "senticoref1"
    assert {task.text_columns[0], task.label_column} <= set(row)
    assert row[task.text_columns[0]][0][:2] == CARD_FIRST_SENTENCES
    document = document_of(row, task.text_columns[0], task.label_column)
    mentions, entities = mentions_and_entities_in(SLOBENCH_COREF / "ground_truth.conllu")
    assert sum(len(cluster) for cluster in document["clusters"]) == mentions == 33
    assert len(document["clusters"]) == entities == 15
    assert mentioned_with(document, (0, 1)) == ["evropska komisija"] * 3  # e0, once in each sentence


def mentioned_with(document: dict, mention: tuple[int, int]) -> list[str]:
    """The words of every mention of the entity that has `mention`, lower-cased."""
    words = [w.lower() for sentence in document["sentences"] for w in sentence]
    cluster = next(c for c in document["clusters"] if mention in c)
    return [" ".join(words[first : last + 1]) for first, last in cluster]


def test_coreference_trains_and_scores_on_the_real_senticoref_document(tmp_path: Path):
    """The coreference type end to end on the real SentiCoref document, MiniLM with LoRA, two steps
    (mechanics only: it is scored on the document it trained on; about 3 s)."""
    spec = demo_run("lora", "senticoref", max_steps=2, max_eval_samples=None)
    result = run_one(spec.model_copy(update={"task": senticoref_on_slobench()}), tmp_path)
    assert result.status == "success", result.error
    assert 0.0 <= result.test["conll_f1"] <= 1.0, result.test


SLOBENCH_SAYS = {  # its README (8ffb67d9): the official scorer's output on sample_ground_truth/submission
    "muc_f1": 0.8387096774193548,
    "b3_f1": 0.8311688311688311,
    "ceafe_f1": 0.8380952380952381,
    "conll_f1": 0.8359912488944747,
    "ceafe_precision": 0.9777777777777779,
    "b3_recall": 0.7111111111111111,
}


def test_our_scorer_gives_slobenchs_own_figures_on_its_sample_submission():
    """SloBENCH scores coreference with ufal's corefud-scorer, singletons dropped (`keep_singletons:
    False`, evaluate_corefud.py), as our task drops them (task.py's gold_clusters; a prediction has
    none). On SloBENCH's own sample submission our scorer prints the figures its README prints."""
    from peftbench.tasks.coreference.corefud import read_corefud
    from peftbench.tasks.coreference.scores import coref_metrics

    def linked(name: str) -> list[list[tuple[int, int]]]:
        [document] = read_corefud(SLOBENCH_COREF / name)
        return [[tuple(m) for m in entity] for entity in document["coref_clusters"] if len(entity) > 1]

    ours = coref_metrics([(linked("ground_truth.conllu"), linked("submission.conllu"))])
    assert {name: ours[name] for name in SLOBENCH_SAYS} == pytest.approx(SLOBENCH_SAYS, abs=1e-12)
