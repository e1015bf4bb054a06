"""The catalog's tasks on real upstream rows and in their publishers' own layouts, hub offline.

HuLU: the catalog's tasks on real upstream rows, read as a user's copy of the archive is read.

tests/fixtures/upstream/hulu/<Task>/ holds the first rows of nytud/<Task>'s own data files, in the
repository's layout (data/*.json, JSON lists, every field as upstream writes it; licence and commit
beside them; scripts/vendor_real_slices.py cut them). Each catalog task is pointed at them with
`files:` (the hub offline), its sentence column renamed where the GitHub files name it `Sent`
(the hub copies call it `sentence`), nothing else changed: its labels read upstream's label strings.
The CI test trains one task end to end; `make smoke-real` trains every task type on the real slices.

Coreference: SloBENCH's own SentiCoref sample (tests/fixtures/upstream/slobench/eval_coreference/, the
CorefUD files of clarinsi/slobench-eval-docker) read through the catalog's `senticoref`, trained on in
CI, and scored by our scorer beside the figures SloBENCH's README prints for its official scorer.

CommonsenseQA: real rows in the hub copy's columns (tests/fixtures/upstream/commonsense_qa/, MIT),
read through the catalog's own hub path with the folder as the hub id. SST-5 and Slovene SuperGLUE
carry no licence we could read, so no rows of theirs are vendored: the catalog entries are checked
against their publishers' file names and folders with our fixture rows, and against a user's real
copy when one is named (PEFTBENCH_REAL_SST5: SetFit/sst5's three files; PEFTBENCH_REAL_SLO_SUPERGLUE:
a folder holding SuperGLUE-HumanT/json/<Task>/), skipped otherwise.
"""

from __future__ import annotations

import hashlib
import os
import shutil
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


CSQA = Path(__file__).parent / "fixtures" / "upstream" / "commonsense_qa"
FIXTURES = Path(__file__).parent / "fixtures"


def on_hub_folder(name: str, folder: Path) -> TaskSpec:
    """The catalog task unchanged but for its hub id: a local folder laid out as the hub repository."""
    task = TASK_CATALOG[name]
    return task.model_copy(update={"source": task.source.model_copy(update={"hub": str(folder)})})


def test_commonsense_qa_real_rows_load_through_the_hub_path_and_the_hidden_test_is_never_read():
    task = on_hub_folder("commonsense_qa", CSQA)
    splits = {split: load_split(task, split) for split in ("train", "validation", "test")}
    assert [len(d) for d in splits.values()] == [4, 1, 2]  # 5 train rows cut 90/10; test: the 2 dev rows
    for data in splits.values():
        assert set(data.column_names) == {"id", "question", "question_concept", "choices", "answerKey"}
        assert {len(c["text"]) for c in data["choices"]} == {5}
        assert {tuple(c["label"]) for c in data["choices"]} == {tuple(task.labels or ())}
        assert {choice_index(task.labels, key, 5) for key in data["answerKey"]} <= set(range(5))
    hidden = load_split(task.model_copy(update={"splits": dict.fromkeys(task.splits, "test")}), "test")
    assert set(hidden["answerKey"]) == {""}, "upstream's test has no answers: the catalog tests on dev"


def hub_layout(folder: Path, fixture: str, names: dict[str, str]) -> Path:
    """Our fixture files for `fixture` copied into `folder` under the publisher's file names."""
    folder.mkdir(parents=True, exist_ok=True)
    for ours, theirs in names.items():
        shutil.copy(FIXTURES / fixture / f"{ours}.jsonl", folder / theirs)
    return folder


def test_sst5_reads_setfits_file_names_with_dev_as_validation(tmp_path: Path):
    """SetFit/sst5 names its files train/dev/test.jsonl; the catalog's default splits read dev as
    validation (datasets' own split names), the published splits as they are."""
    names = {"train": "train.jsonl", "validation": "dev.jsonl", "test": "test.jsonl"}
    task = on_hub_folder("sst5", hub_layout(tmp_path / "sst5", "sst5", names))
    validation = load_split(task, "validation")
    assert validation["text"] == load_split(on_hub_folder("sst5", FIXTURES / "sst5"), "validation")["text"]
    assert [label_index(task.labels, v) for v in validation["label"]] == validation["label"]


SLO_TASKS = {
    "slo_boolq": "BoolQ",
    "slo_cb": "CB",
    "slo_copa": "COPA",
    "slo_rte": "RTE",
    "slo_multirc": "MultiRC",
    "slo_wsc": "WSC",
    "slo_wic": "WiC",
    "slo_record": "ReCoRD",
}


def test_every_slovene_superglue_entry_reads_the_archives_json_folders(tmp_path: Path, monkeypatch):
    """Each entry exactly as the catalog has it, run where the archive is unpacked: the files sit in
    SuperGLUE-<variant>/json/<Task>/ as train.jsonl, val.jsonl, test.jsonl."""
    monkeypatch.chdir(tmp_path)
    names = {"train": "train.jsonl", "validation": "val.jsonl", "test": "test.jsonl"}
    for name, folder in SLO_TASKS.items():
        variant = "GoogleMT" if name in ("slo_wic", "slo_record") else "HumanT"
        hub_layout(
            tmp_path / "data" / "slo_superglue" / f"SuperGLUE-{variant}" / "json" / folder, name, names
        )
        assert all(len(load_split(TASK_CATALOG[name], split)) for split in ("train", "validation", "test"))


SETFIT_SST5 = {  # SetFit/sst5 at e51bdcd8: file -> (sha256, rows); as its dataset_info records them
    "train.jsonl": ("46bde4fb5abc93ffbadfa9a9f67de17c08a2f535cfb5756c59188d070434f433", 8544),
    "dev.jsonl": ("4369df4d4229e736fa734af49b342c7d6002c4d8514d9c206a5aa26edc620b79", 1101),
    "test.jsonl": ("1384216112a34f3d70b6fa210762f3399bb080410c0456ac6e54a5cb413f04b2", 2210),
}


def real_copy(variable: str) -> Path:
    found = os.environ.get(variable)
    if not found:
        pytest.skip(f"{variable} names no real copy (docs/tasks.md, 'Real rows')")
    return Path(found)


def test_a_real_copy_of_setfit_sst5_loads_through_the_catalog():
    folder = real_copy("PEFTBENCH_REAL_SST5")
    for file, (digest, _) in SETFIT_SST5.items():
        assert hashlib.sha256((folder / file).read_bytes()).hexdigest() == digest, f"{file} is not SetFit's"
    task = on_hub_folder("sst5", folder)
    rows = [len(load_split(task, split)) for split in ("train", "validation", "test")]
    assert rows == [n for _, n in SETFIT_SST5.values()]
    labels = load_split(task, "test")
    assert {task.labels[label_index(task.labels, v)] for v in labels["label"]} == set(labels["label_text"])


HUMANT_ROWS = {  # train.jsonl, val.jsonl rows of SuperGLUE-HumanT/json/<Task>/ (tasks/catalog.py)
    "slo_boolq": (92, 18),
    "slo_cb": (250, 56),
    "slo_copa": (400, 100),
    "slo_rte": (232, 29),
    "slo_multirc": (15, 3),  # passages
    "slo_wsc": (554, 104),
}


def test_a_real_copy_of_slovene_superglue_loads_through_the_catalog(tmp_path: Path, monkeypatch):
    """PEFTBENCH_REAL_SLO_SUPERGLUE: the folder the archive was unpacked into (SuperGLUE-HumanT/ in it)."""
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "slo_superglue").symlink_to(real_copy("PEFTBENCH_REAL_SLO_SUPERGLUE"))
    monkeypatch.chdir(tmp_path)
    for name, (train, val) in HUMANT_ROWS.items():
        task = TASK_CATALOG[name]
        if name != "slo_multirc":  # MultiRC's rows are its answers
            assert len(load_split(task, "train")) + len(load_split(task, "validation")) == train
            assert len(load_split(task, "test")) == val
        for split in ("train", "validation", "test"):
            data = load_split(task, split)
            if task.type == "multiple_choice":
                assert {choice_index(task.labels, v, 2) for v in data[task.label_column]} <= {0, 1}
            else:
                assert {label_index(task.labels, v) for v in data[task.label_column]} <= {0, 1, 2}


def test_commonsense_qa_real_rows_train_and_score_end_to_end(tmp_path: Path):
    """Multiple choice on CommonsenseQA's real rows: MiniLM with LoRA, two steps, scored on dev."""
    spec = demo_run("lora", "commonsense_qa", max_steps=2, max_eval_samples=None)
    spec = spec.model_copy(update={"task": on_hub_folder("commonsense_qa", CSQA)})
    result = run_one(spec, tmp_path)
    assert result.status == "success", result.error
    assert 0.0 <= result.test["accuracy"] <= 1.0
