"""The classification type's encoding of sentence pairs, for encoder and decoder tokenizers."""

from __future__ import annotations

from pathlib import Path

from peftbench.config import ModelRef, TrainingSettings
from peftbench.models import MODEL_CATALOG, load_tokenizer
from peftbench.tasks import TASK_CATALOG, TASK_TYPES
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
