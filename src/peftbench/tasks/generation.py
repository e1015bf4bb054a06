"""Text generation (summarization, translation) with seq2seq models or decoder-only LMs.

The source text is `text_columns[0]` and the reference `target_column`; both may be dotted paths
into a struct (opus-100's `translation.sl`). A seq2seq model (t5, mt5, bart) encodes the prompt and
learns the target as its labels. A decoder-only LM reads prompt + target and learns the target
only: the prompt's labels are -100. The prompt is the task's `prompt` template over the row's
columns when given (e.g. `"Summarize: {document}\\nSummary:"`; tasks.prompts), else the source text,
followed by a newline for a decoder.

Lengths: a decoder's prompt keeps at most `max_length - max_new_tokens` tokens, and its target what
is left of `max_length`; a seq2seq prompt and target keep `max_length` tokens each. A prompt that is
too long loses tokens from the end of its longest field (the document, not the template's cue).
A target ends with the end-of-sequence token unless it was cut.

Evaluation generates greedily, or at the training setting `temperature` (`max_new_tokens`; unset,
64 or half of max_length if less) with the trained model and scores the texts against the
references (ROUGE-1/2/L, BLEU, chrF, METEOR; metrics.text_metrics), plus the loss. During
training the validation loss alone selects checkpoints and stops early (`selection_metric`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any

from peftbench.core.directions import LOSS, TEXT_METRICS
from peftbench.core.spec import DEFAULT_MAX_NEW_TOKENS
from peftbench.models.loading import load_for_text_generation
from peftbench.tasks.base import (
    Evaluation,
    PreparedData,
    SplitEncoding,
    TaskType,
    example_id,
    register_task_type,
    split_limits,
)
from peftbench.tasks.metrics import text_metrics
from peftbench.tasks.prompts import PromptTemplate, column_text, template_problem
from peftbench.tasks.sources import load_rows

if TYPE_CHECKING:
    from peftbench.core.spec import ModelRef, TaskSpec, TrainingSettings
    from peftbench.models.loading import LoadedModel

ENCODING_VERSION = 2  # bump when the encoding below changes: it is part of the tokenization cache key
IGNORE = -100  # label of a token the loss skips


@dataclass
class EvalTexts:
    """What evaluating one split needs besides its tokenized form."""

    prompts: list[list[int]]  # the token ids the model continues (decoder) or encodes (seq2seq)
    references: list[str]
    questions: list[str]  # the text columns joined: what was asked (an LLM judge reads it)
    categories: list[str] | None  # from `category_column`, when the task has one


@dataclass
class GenerationData(PreparedData):
    """Tokenized splits, plus what generating and scoring texts needs."""

    tokenizer: Any = None
    seq2seq: bool = False
    max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS
    texts: dict[str, EvalTexts] = field(default_factory=dict)
    temperature: float | None = None  # None: greedy


@dataclass(frozen=True)
class Layout:
    """How examples become token ids for one model kind and length budget."""

    seq2seq: bool
    max_length: int
    max_new_tokens: int

    @property
    def prompt_budget(self) -> int:
        return self.max_length if self.seq2seq else self.max_length - self.max_new_tokens


@register_task_type
class Generation(TaskType):
    name = "generation"
    metrics = TEXT_METRICS

    def problems(self, task: TaskSpec) -> list[tuple[str, str, Any, tuple[str, ...]]]:
        found = super().problems(task)
        if task.target_column is None:
            found.append(
                ("target_column", f"A {self.name} task needs the column of its reference text.", None, ())
            )
        problem = template_problem(task.prompt)
        if problem:
            found.append(("prompt", problem, task.prompt, ()))
        if task.judge is not None:
            found.append(("judge", "Only instruction tasks use a judge.", task.judge.url, ()))
        return found

    def selection_metric(self, task: TaskSpec) -> str:
        return LOSS

    def load_model(self, ref: ModelRef, task: TaskSpec, tokenizer: Any, **options: Any) -> LoadedModel:
        return load_for_text_generation(ref, tokenizer.pad_token_id, **options)

    def template(self, task: TaskSpec, row: dict[str, Any], seq2seq: bool) -> PromptTemplate:
        """One row's prompt template: the task's own, else the source text (+ a newline for a decoder)."""
        if task.prompt is not None:
            return PromptTemplate(task.prompt)
        return PromptTemplate(f"{{{task.text_columns[0]}}}" + ("" if seq2seq else "\n"))

    def split_encoding(self, task: TaskSpec, tokenizer: Any, training: TrainingSettings) -> SplitEncoding:
        """Prompt + target ids and labels; the evaluation splits' texts are read here too, bound to the
        GenerationData that `prepare_data` makes."""
        from transformers import DataCollatorForSeq2Seq

        layout = self.layout(tokenizer, training)
        columns = self.columns(task)
        limits = split_limits(training)
        texts = {
            split: self._eval_texts(
                task,
                load_rows(task, split, limits[split], columns + self.category_columns(task, split)),
                tokenizer,
                layout,
            )
            for split in ("validation", "test")
        }
        encode = partial(self.encode, task=task, tokenizer=tokenizer, layout=layout)
        return SplitEncoding(
            key={
                "task_type": self.name,
                "encoding": ENCODING_VERSION,
                "layout": [layout.seq2seq, layout.max_length, layout.max_new_tokens],
                **task.model_dump(include={"text_columns", "target_column", "prompt"}),
            },
            columns=columns,
            encode=encode,
            encode_train=(
                (lambda rows: pack_rows(encode(rows), layout.max_length)) if training.uses_packing else None
            ),
            collator=(
                PackedRowCollator(tokenizer.pad_token_id)
                if training.uses_packing
                else DataCollatorForSeq2Seq(tokenizer, label_pad_token_id=IGNORE)
            ),
            prepared=partial(
                GenerationData,
                tokenizer=tokenizer,
                seq2seq=layout.seq2seq,
                max_new_tokens=layout.max_new_tokens,
                texts=texts,
                temperature=training.temperature,
            ),
        )

    def layout(self, tokenizer: Any, training: TrainingSettings) -> Layout:
        """The model kind and length budget; ValueError where the settings do not fit the model."""
        seq2seq = is_encoder_decoder(tokenizer)
        layout = Layout(seq2seq, training.max_length, training.effective_max_new_tokens)
        if layout.prompt_budget < 1:
            raise ValueError(
                f"max_length ({layout.max_length}) must be larger than max_new_tokens "
                f"({layout.max_new_tokens}): a decoder's prompt and answer share max_length."
            )
        if training.uses_packing and seq2seq:
            raise ValueError("packing is for decoder-only models; this tokenizer's model is a seq2seq model.")
        return layout

    def columns(self, task: TaskSpec) -> list[str]:
        """Every column path the task encodes (the category is read for scoring only)."""
        paths = [*task.text_columns, task.target_column]
        if task.prompt is not None:
            paths += PromptTemplate(task.prompt).fields
        return [p for p in paths if p is not None]

    def category_columns(self, task: TaskSpec, split: str) -> list[str]:
        """[category_column] where the split's rows carry it: every evaluation split, or only test when
        test comes from `test_source` (an evaluation set with categories; the training data has none)."""
        if task.category_column is None or (task.test_source is not None and split != "test"):
            return []
        return [task.category_column]

    def encode(self, data: Any, task: TaskSpec, tokenizer: Any, layout: Layout) -> Any:
        """Token ids, attention mask and labels of each row (a `datasets.Dataset` in, one out)."""
        target_column = task.target_column or ""
        eos = tokenizer.eos_token_id

        def encode_batch(batch: dict[str, list]) -> dict[str, list]:
            rows = [dict(zip(batch, values, strict=True)) for values in zip(*batch.values(), strict=True)]
            prompts = self.prompt_ids(task, rows, tokenizer, layout)
            targets = tokenizer(
                [column_text(r, target_column) for r in rows], add_special_tokens=layout.seq2seq
            )["input_ids"]
            out: dict[str, list] = {"input_ids": [], "attention_mask": [], "labels": []}
            for prompt, target in zip(prompts, targets, strict=True):
                if not target or target[-1] != eos:
                    target = [*target, eos]
                if layout.seq2seq:
                    ids, labels = prompt, target[: layout.max_length]
                else:
                    target = target[: layout.max_length - len(prompt)]
                    ids, labels = prompt + target, [IGNORE] * len(prompt) + target
                out["input_ids"].append(ids)
                out["attention_mask"].append([1] * len(ids))
                out["labels"].append(labels)
            return out | example_id(batch)

        return data.map(encode_batch, batched=True, remove_columns=data.column_names)

    def prompt_ids(
        self, task: TaskSpec, rows: list[dict[str, Any]], tokenizer: Any, layout: Layout
    ) -> list[list[int]]:
        """Each row's prompt as token ids, within the layout's prompt budget."""
        rendered = [self.template(task, row, layout.seq2seq).render(row) for row in rows]
        return fit_prompts(tokenizer, rendered, layout.prompt_budget)

    def _eval_texts(self, task: TaskSpec, data: Any, tokenizer: Any, layout: Layout) -> EvalTexts:
        rows = [data[i] for i in range(len(data))]
        categories = None
        if task.category_column is not None and task.category_column.split(".")[0] in data.column_names:
            categories = [column_text(r, task.category_column) for r in rows]
        return EvalTexts(
            prompts=self.prompt_ids(task, rows, tokenizer, layout),
            references=[column_text(r, task.target_column or "") for r in rows],
            questions=["\n".join(t for c in task.text_columns if (t := column_text(r, c))) for r in rows],
            categories=categories,
        )

    def compute_metrics(self, task: TaskSpec, logits: Any, labels: Any) -> dict[str, float]:
        """Nothing from logits: text metrics need generated text (see `evaluate`)."""
        return {}

    def predicted_labels(self, logits: Any) -> list[int]:
        raise TypeError(f"{self.name} tasks predict text, not class labels")

    def evaluate(self, trainer: Any, task: TaskSpec, data: PreparedData, split: str) -> Evaluation:
        texts, predictions = self.generate(trainer, data, split)
        metrics = {LOSS: split_loss(trainer, getattr(data, split), split)}
        metrics |= text_metrics(predictions, texts.references, task.language)
        return Evaluation(metrics, predictions)

    def generate(self, trainer: Any, data: PreparedData, split: str) -> tuple[EvalTexts, list[str]]:
        """The split's texts and the trained model's greedy answer to each of its prompts."""
        if not isinstance(data, GenerationData):
            raise TypeError(f"{self.name}.evaluate needs the GenerationData its prepare_data made")
        texts = data.texts[split]
        predictions = generate_texts(
            trainer.model,
            data.tokenizer,
            texts.prompts,
            seq2seq=data.seq2seq,
            max_new_tokens=data.max_new_tokens,
            batch_size=trainer.args.per_device_eval_batch_size,
            temperature=data.temperature,
        )
        return texts, predictions


def is_encoder_decoder(tokenizer: Any) -> bool:
    """Whether the model beside this tokenizer (same folder or hub id) is a seq2seq model."""
    from transformers import AutoConfig

    source = tokenizer.name_or_path
    try:
        return bool(AutoConfig.from_pretrained(source).is_encoder_decoder)
    except (OSError, ValueError) as err:
        raise ValueError(
            f"Cannot read the model config at {source!r} to tell seq2seq from decoder: {err}"
        ) from err


def fit_prompts(
    tokenizer: Any, rendered: list[tuple[str, dict[str, tuple[int, int]]]], budget: int
) -> list[list[int]]:
    """Token ids of each rendered prompt, at most `budget` of them.

    A prompt that is too long loses tokens from the end of its longest field, so that the template's
    text around it (an instruction, a cue such as "Summary:") stays. If that is not enough, or the
    tokenizer cannot map tokens to characters (a slow tokenizer), the prompt keeps its last tokens.
    """
    texts = [text for text, _ in rendered]
    if not getattr(tokenizer, "is_fast", False):
        return [ids[-budget:] for ids in tokenizer(texts)["input_ids"]]
    encoded = tokenizer(texts, return_offsets_mapping=True, return_special_tokens_mask=True)
    rows = zip(encoded["input_ids"], encoded["offset_mapping"], encoded["special_tokens_mask"], strict=True)
    return [fit_prompt(*row, spans, budget) for row, (_, spans) in zip(rows, rendered, strict=True)]


def fit_prompt(
    ids: list[int],
    offsets: list[tuple[int, int]],
    special: list[int],
    spans: dict[str, tuple[int, int]],
    budget: int,
) -> list[int]:
    """One prompt's token ids, at most `budget`: see `fit_prompts`."""
    excess = len(ids) - budget
    if excess > 0 and spans:
        longest = max(spans.values(), key=lambda span: span[1] - span[0])
        dropped = set(tokens_within(offsets, special, longest)[-excess:])
        ids = [t for j, t in enumerate(ids) if j not in dropped]
    return ids[-budget:]


def tokens_within(offsets: list[tuple[int, int]], special: list[int], span: tuple[int, int]) -> list[int]:
    """Positions of the text tokens (not special, not empty) whose characters lie inside `span`."""
    start, end = span
    return [j for j, (a, b) in enumerate(offsets) if not special[j] and b > a and a >= start and b <= end]


def pack_rows(data: Any, max_length: int) -> Any:
    """Concatenate consecutive examples into rows of at most `max_length` tokens.

    Each row keeps every example's labels (prompt tokens stay -100) and gets `position_ids` that
    restart at 0 for every example; from them transformers builds a block-diagonal causal mask, so
    no example attends to another (PackedRowCollator leaves out the attention mask for that).
    """
    from datasets import Dataset

    packed: dict[str, list] = {"input_ids": [], "labels": [], "position_ids": []}
    row: dict[str, list] = {k: [] for k in packed}
    for ids, labels in zip(data["input_ids"], data["labels"], strict=True):
        if row["input_ids"] and len(row["input_ids"]) + len(ids) > max_length:
            for k in packed:
                packed[k].append(row[k])
            row = {k: [] for k in packed}
        row["input_ids"] += ids
        row["labels"] += labels
        row["position_ids"] += list(range(len(ids)))
    if row["input_ids"]:
        for k in packed:
            packed[k].append(row[k])
    return Dataset.from_dict(packed)


@dataclass
class PackedRowCollator:
    """Batches rows that may hold several packed examples, for decoder-only LMs.

    Rows are padded to the longest; padding gets labels -100 and positions of its own (0, 1, ...),
    so it is one more sequence that nothing attends to. There is no attention mask and no KV cache:
    transformers then derives the per-example causal mask from `position_ids`. A row without
    `position_ids` (an unpacked validation example) is one sequence.
    """

    pad_token_id: int

    def __call__(self, features: list[dict[str, Any]]) -> dict[str, Any]:
        import torch

        width = max(len(f["input_ids"]) for f in features)
        batch: dict[str, list] = {"input_ids": [], "labels": [], "position_ids": []}
        for f in features:
            n, pad = len(f["input_ids"]), width - len(f["input_ids"])
            batch["input_ids"].append(list(f["input_ids"]) + [self.pad_token_id] * pad)
            batch["labels"].append(list(f["labels"]) + [IGNORE] * pad)
            positions = list(f["position_ids"]) if f.get("position_ids") is not None else list(range(n))
            batch["position_ids"].append(positions + list(range(pad)))
        return {**{k: torch.tensor(v, dtype=torch.long) for k, v in batch.items()}, "use_cache": False}


def generate_texts(
    model: Any,
    tokenizer: Any,
    prompts: list[list[int]],
    *,
    seq2seq: bool,
    max_new_tokens: int,
    batch_size: int,
    temperature: float | None = None,
) -> list[str]:
    """Continuations of token-id prompts, decoded without special tokens, in the prompts' order.

    Greedy, or sampled from the whole distribution at `temperature` (no top-k/top-p cut, as a
    chat API samples; BELLE's 0.001 is all but greedy). Prompts are batched by length (less
    padding); a decoder's are padded on the left.
    """
    sampling: dict[str, Any] = (
        {"do_sample": False}
        if temperature is None
        else {"do_sample": True, "temperature": temperature, "top_k": 0, "top_p": 1.0}
    )
    import torch

    device = next(model.parameters()).device
    pad = tokenizer.pad_token_id
    order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))
    texts = [""] * len(prompts)
    was_training = model.training
    model.eval()
    with torch.no_grad():
        for start in range(0, len(order), batch_size):
            chunk = order[start : start + batch_size]
            width = max(len(prompts[i]) for i in chunk)
            ids = torch.full((len(chunk), width), pad, dtype=torch.long)
            mask = torch.zeros((len(chunk), width), dtype=torch.long)
            for row, i in enumerate(chunk):
                n = len(prompts[i])
                where = slice(0, n) if seq2seq else slice(width - n, width)
                ids[row, where] = torch.tensor(prompts[i], dtype=torch.long)
                mask[row, where] = 1
            output = model.generate(
                input_ids=ids.to(device),
                attention_mask=mask.to(device),
                max_new_tokens=max_new_tokens,
                num_beams=1,
                **sampling,
                pad_token_id=pad,
                eos_token_id=tokenizer.eos_token_id,
            )
            new_tokens = output if seq2seq else output[:, width:]
            for i, text in zip(
                chunk, tokenizer.batch_decode(new_tokens, skip_special_tokens=True), strict=True
            ):
                texts[i] = text.strip()
    model.train(was_training)
    return texts


def split_loss(trainer: Any, dataset: Any, split: str) -> float:
    """The model's mean loss on a tokenized split (one forward pass, no logits kept)."""
    output = trainer.evaluation_loop(
        trainer.get_eval_dataloader(dataset),
        description=f"{split} loss",
        prediction_loss_only=True,
        metric_key_prefix=split,
    )
    return float(output.metrics[f"{split}_loss"])
