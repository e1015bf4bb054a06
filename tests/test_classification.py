"""The classification type's encoding of sentence pairs, for encoder and decoder tokenizers."""

from __future__ import annotations

from pathlib import Path

import pytest

from peftbench.core.spec import ModelRef, TrainingSettings
from peftbench.methods import METHODS
from peftbench.models.catalog import MODEL_CATALOG
from peftbench.models.loading import load_tokenizer
from peftbench.tasks import TASK_CATALOG, TASK_TYPES
from peftbench.tasks.classification import longest_first_lengths, special_tokens_around
from peftbench.tasks.sources import load_split

SETTINGS = TrainingSettings(max_length=64, max_train_samples=4, max_eval_samples=4)


def test_a_decoder_tokenizer_gets_a_pair_joined_by_a_newline(tiny_decoder: Path):
    """Decoder tokenizers have no separator: a pair given as two texts would run them together."""
    task = TASK_CATALOG["epistemic_nli"]
    first = load_split(task, "train")[0]
    premise, hypothesis = first["premise"], first["hypothesis"]

    decoder = load_tokenizer(ModelRef(name="tiny", source=str(tiny_decoder), family="llama"))
    data = TASK_TYPES["classification"].prepare_data(task, decoder, SETTINGS)
    assert data.train[0]["input_ids"] == decoder(f"{premise}\n{hypothesis}")["input_ids"]
    nothing_between = decoder(premise)["input_ids"] + decoder(hypothesis)["input_ids"]
    assert decoder(premise, hypothesis)["input_ids"] == nothing_between

    encoder = load_tokenizer(MODEL_CATALOG["minilm-l6"])
    data = TASK_TYPES["classification"].prepare_data(task, encoder, SETTINGS)
    assert data.train[0]["input_ids"] == encoder(premise, hypothesis)["input_ids"]  # [SEP] between


def test_prompt_learning_is_refused_on_a_seq2seq_classification_head_because_it_fails_there():
    import torch
    from peft import PromptTuningConfig, TaskType, get_peft_model
    from transformers import BartConfig, BartForSequenceClassification

    from peftbench.models.families import FAMILY_TRAITS

    classification, task = TASK_TYPES["classification"], TASK_CATALOG["movie_sentiment"]
    for method in ("prompt_tuning", "prefix_tuning", "p_tuning"):
        virtual = METHODS[method].traits
        assert "seq2seq" in classification.unsupported_reason(task, FAMILY_TRAITS["bart"], virtual)
        assert classification.unsupported_reason(task, FAMILY_TRAITS["bert"], virtual) is None
    assert classification.unsupported_reason(task, FAMILY_TRAITS["t5"], METHODS["lora"].traits) is None

    # The fact behind the refusal: BART's head finds the end token in input_ids, so it takes no
    # input embeddings, which is how prompt tuning feeds its virtual tokens.
    config = BartConfig(
        vocab_size=64, d_model=16, encoder_layers=1, decoder_layers=1, encoder_attention_heads=2,
        decoder_attention_heads=2, encoder_ffn_dim=32, decoder_ffn_dim=32, num_labels=2,
    )  # fmt: skip
    prompt = PromptTuningConfig(task_type=TaskType.SEQ_CLS, num_virtual_tokens=4)
    model = get_peft_model(BartForSequenceClassification(config), prompt)
    ids = torch.tensor([[0, 5, 6, 2]])
    with pytest.raises(NotImplementedError, match="input embeddings"):
        model(input_ids=ids, attention_mask=torch.ones_like(ids))


def test_a_long_premise_leaves_room_for_the_hypothesis_on_a_decoder(tiny_decoder: Path):
    """Cut from the right as one text, a long premise left no hypothesis at all on decoders."""
    task = TASK_CATALOG["epistemic_nli"]
    rows = load_split(task, "train")
    settings = SETTINGS.model_copy(update={"max_length": 24, "max_train_samples": 200})
    decoder = load_tokenizer(ModelRef(name="tiny", source=str(tiny_decoder), family="llama"))
    data = TASK_TYPES["classification"].prepare_data(task, decoder, settings)
    long_premise = next(
        i for i in range(len(data.train)) if len(decoder(rows[i]["premise"])["input_ids"]) > 24
    )
    kept = data.train[long_premise]["input_ids"]
    hypothesis = decoder("\n" + rows[long_premise]["hypothesis"], add_special_tokens=False)["input_ids"]
    premise = decoder(rows[long_premise]["premise"], add_special_tokens=False)["input_ids"]
    assert len(kept) == 24
    first, second = longest_first_lengths(len(premise), len(hypothesis), 24)
    assert second >= min(len(hypothesis), 12)  # the hypothesis keeps at least half the room
    assert kept == premise[:first] + hypothesis[:second]


def test_longest_first_lengths_cut_as_the_tokenizers_own_longest_first():
    encoder = load_tokenizer(MODEL_CATALOG["minilm-l6"])
    words = ["one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven"]
    words.append("twelve")
    cases = [(12, 3, 12), (3, 12, 12), (9, 9, 14), (9, 9, 15), (10, 9, 14), (9, 10, 14), (9, 10, 15)]
    cases.append((5, 4, 20))
    for first_words, second_words, max_length in cases:
        first, second = " ".join(words[:first_words]), " ".join(words[:second_words])
        types = encoder(first, second, truncation="longest_first", max_length=max_length)["token_type_ids"]
        kept = (types.count(0) - 2, types.count(1) - 1)  # [CLS] first [SEP] | second [SEP]
        room = max_length - encoder.num_special_tokens_to_add(pair=True)
        assert longest_first_lengths(first_words, second_words, room) == kept


def test_special_tokens_around_one_text():
    encoder = load_tokenizer(MODEL_CATALOG["minilm-l6"])
    assert special_tokens_around(encoder) == ([encoder.cls_token_id], [encoder.sep_token_id])


def test_multirc_selects_on_f1a_and_reports_em_over_questions(tmp_path: Path):
    """slo_multirc through run_one: f1a and em in validation and test; test em is the share of
    questions whose answers the predictions file gets all right."""
    import json
    from collections import defaultdict

    from peftbench.core.paths import RunPaths
    from peftbench.core.predictions import read_predictions
    from peftbench.core.spec import DataSource, RunSpec
    from peftbench.methods import METHODS
    from peftbench.run.one import run_one
    from peftbench.tasks.row_layouts import in_order

    folder = Path(__file__).parent / "fixtures" / "slo_multirc"
    files = {s: str(folder / f"{s}.jsonl") for s in ("train", "validation", "test")}
    catalog = TASK_CATALOG["slo_multirc"]
    task = catalog.model_copy(update={"source": DataSource(files=files, layout=catalog.source.layout)})
    assert task.metric == "f1a" and TASK_TYPES["classification"].problems(task) == []
    spec = RunSpec(
        sweep="t",
        model=MODEL_CATALOG["minilm-l6"],
        task=task,
        method="lora",
        label="lora",
        params=METHODS["lora"].Params().model_dump(),
        training=SETTINGS.model_copy(
            update={"max_steps": 1, "batch_size": 4, "max_eval_samples": None, "learning_rate": 1e-3}
        ),
        seed=0,
    )
    result = run_one(spec, tmp_path)
    assert result.status == "success", result.error
    assert {"f1a", "em", "f1_macro", "accuracy"} <= set(result.validation) & set(result.test)
    gold = {
        f"{row['idx']}-{q['idx']}-{a['idx']}": a["label"]
        for row in map(json.loads, (folder / "validation.jsonl").read_text("utf-8").splitlines())
        for q in in_order(row["passage"]["questions"])  # the archive's dicts keyed by position
        for a in in_order(q["answers"])
    }
    right: dict[str, bool] = defaultdict(lambda: True)
    for p in read_predictions(RunPaths(tmp_path).test_predictions):
        question = str(p.id).rsplit("-", 1)[0]
        right[question] &= p.label == gold[str(p.id)]
    assert len(right) == 6 and result.test["em"] == sum(right.values()) / 6
