"""Instruction tuning: supervised fine-tuning on instruction / input / output data (BELLE, Alpaca).

`text_columns` are [instruction] or [instruction, input], `target_column` the output. Unless the
task gives its own `prompt` template, the prompt is BELLE's Human/Assistant format:

    Human: {instruction}
    {input}

    Assistant: {output}<eos>

(the input line only when the example has one). The loss is on the response only: every prompt
token is labelled -100, also when training examples are packed into rows of max_length tokens
(`packing: true`). Tokenization, lengths and generation are those of the generation task type.

Evaluation: greedy answers scored against the references (rougeL, bleu, and rouge1/2, chrf), and,
when the task has a `judge`, each answer's 0-1 score from an LLM judge: `judge` (the macro average
over `category_column`'s categories) and `judge/<category>` (peftbench.judge).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from peftbench.core.directions import INSTRUCTION_METRICS, JUDGE, LOSS
from peftbench.tasks.base import Evaluation, PreparedData, SplitEncoding, register_task_type
from peftbench.tasks.generation import Generation, split_loss
from peftbench.tasks.judge import Judge, JudgeItem, judge_metrics
from peftbench.tasks.metrics import text_metrics
from peftbench.tasks.prompts import PromptTemplate, column_text

if TYPE_CHECKING:
    from peftbench.core.spec import TaskSpec, TrainingSettings


def belle_template(instruction: str, input_column: str | None) -> PromptTemplate:
    """BELLE's Human/Assistant prompt over these columns (an input line only when given)."""
    input_line = f"\n{{{input_column}}}" if input_column else ""
    return PromptTemplate(f"Human: {{{instruction}}}{input_line}\n\nAssistant: ")


@register_task_type
class Instruction(Generation):
    name = "instruction"
    metrics = INSTRUCTION_METRICS

    def problems(self, task: TaskSpec) -> list[tuple[str, str, Any, tuple[str, ...]]]:
        judge = task.judge
        found = super().problems(task.model_copy(update={"judge": None}))
        if task.metric == JUDGE and judge is None:
            found.append(("metric", "Metric 'judge' needs a judge: server url and model.", task.metric, ()))
        return found

    def template(self, task: TaskSpec, row: dict[str, Any], seq2seq: bool) -> PromptTemplate:
        if task.prompt is not None:
            return PromptTemplate(task.prompt)
        input_column = task.text_columns[1] if len(task.text_columns) > 1 else None
        has_input = input_column is not None and column_text(row, input_column).strip()
        return belle_template(task.text_columns[0], input_column if has_input else None)

    def split_encoding(self, task: TaskSpec, tokenizer: Any, training: TrainingSettings) -> SplitEncoding:
        """As generation's, once the judge has answered: a run whose judge is away fails before it trains."""
        if task.judge is not None:
            Judge(task.judge).check()
        return super().split_encoding(task, tokenizer, training)

    def evaluate(self, trainer: Any, task: TaskSpec, data: PreparedData, split: str) -> Evaluation:
        texts, answers = self.generate(trainer, data, split)
        metrics = {LOSS: split_loss(trainer, getattr(data, split), split)}
        metrics |= text_metrics(answers, texts.references, task.language)
        if task.judge is not None:
            categories = texts.categories or [""] * len(answers)
            items = [
                JudgeItem(question, reference, answer, category)
                for question, reference, answer, category in zip(
                    texts.questions, texts.references, answers, categories, strict=True
                )
            ]
            scores = Judge(task.judge).score_all(items)
            metrics |= judge_metrics(scores, texts.categories, task.judge.category_groups)
        return Evaluation(metrics, answers)
