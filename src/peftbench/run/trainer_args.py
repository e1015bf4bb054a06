"""Our TrainingSettings as transformers TrainingArguments."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from peftbench.core.directions import higher_is_better
from peftbench.core.spec import TrainingSettings


def resolved_precision(precision: str) -> str:
    """ "auto" made concrete: bf16 on a GPU that supports it, else fp32."""
    import torch

    if precision != "auto":
        return precision
    return "bf16" if torch.cuda.is_available() and torch.cuda.is_bf16_supported() else "fp32"


def training_arguments(
    training: TrainingSettings,
    metric: str,
    seed: int,
    output_dir: Path,
    engine: dict[str, Any] | None = None,
) -> Any:
    """Our TrainingSettings as transformers TrainingArguments (checkpoints follow evaluation).

    `engine` holds the keywords that select DeepSpeed or FSDP (distributed.engine_arguments).
    """
    import torch
    from transformers import TrainingArguments

    cuda = torch.cuda.is_available()
    precision = resolved_precision(training.precision)
    early_stopping = training.early_stopping_patience is not None
    return TrainingArguments(
        output_dir=str(output_dir),
        num_train_epochs=training.epochs,
        max_steps=training.max_steps or -1,
        per_device_train_batch_size=training.batch_size,
        per_device_eval_batch_size=training.eval_batch_size,
        gradient_accumulation_steps=training.gradient_accumulation_steps,
        learning_rate=training.learning_rate,
        weight_decay=training.weight_decay,
        warmup_steps=training.warmup_ratio,
        lr_scheduler_type=training.lr_scheduler,
        eval_strategy=training.eval_strategy,
        eval_steps=training.eval_steps,
        save_strategy=_save_strategy(training),
        save_steps=training.effective_checkpoint_steps,
        save_total_limit=2 if early_stopping else 1,
        load_best_model_at_end=early_stopping,
        metric_for_best_model=metric,
        greater_is_better=higher_is_better(metric),
        bf16=precision == "bf16",
        fp16=precision == "fp16",
        use_cpu=not cuda,
        seed=seed,
        data_seed=seed,
        train_sampling_strategy="group_by_length" if training.group_by_length else "random",
        include_num_input_tokens_seen="non_padding",
        # With it on, the Trainer multiplies every loss by the number of processes, expecting the
        # model to divide by the tokens of all of them; classification heads do not, so their
        # gradients (and the reported eval loss) came out world-size times too large.
        average_tokens_across_devices=False,
        prediction_loss_only=metric == "loss",  # nothing to score from logits: gather none
        logging_steps=10,
        report_to="none",
        disable_tqdm=True,
        **_speed_arguments(training),
        **(engine or {}),
    )


def _save_strategy(training: TrainingSettings) -> str:
    """Checkpoints follow evaluation (each epoch when there is none), or every `checkpoint_steps`
    steps when set, unless early stopping needs them at its evaluations."""
    if training.checkpoint_steps is not None and training.early_stopping_patience is None:
        return "steps"
    return training.eval_strategy if training.eval_strategy != "no" else "epoch"


def _speed_arguments(training: TrainingSettings) -> dict[str, Any]:
    """The optimizer and gradient checkpointing keywords, where the settings ask for them."""
    speed: dict[str, Any] = {"optim": training.optimizer} if training.optimizer else {}
    if training.uses_gradient_checkpointing:  # non-reentrant: works with frozen inputs (peft) without hooks
        speed |= {"gradient_checkpointing": True, "gradient_checkpointing_kwargs": {"use_reentrant": False}}
    return speed
