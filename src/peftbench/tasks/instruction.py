"""Instruction tuning: supervised fine-tuning on instruction / input / output data (BELLE, Alpaca).

`text_columns` are [instruction] or [instruction, input], `target_column` the output. Unless the
task gives its own `prompt` template, the prompt is BELLE's Human/Assistant format:

    Human: {instruction}
    {input}

    Assistant: {output}<eos>

(the input line only when the example has one). The loss is on the response only: every prompt
token is labelled -100, also when training examples are packed into rows of max_length tokens
(`packing: true`). Tokenization, lengths and generation are those of the generation task type.

Evaluation: greedy answers scored against the references (rougeL, bleu, and rouge1/2, chrf). Every
validation and test answer is saved with its question, reference and category (`answers.jsonl`,
core/judging.py) for an LLM judge's 0-1 score: `judge` (the macro average over
`category_column`'s categories) and `judge/<category>`. By default the judge scores them apart
from the run (`peftbench judge`, tasks/judging_step.py), so a run needs no judge to succeed; with
`judge: {where: run}` the run asks the judge itself (tasks/judge.py).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from peftbench.core.directions import INSTRUCTION_METRICS, JUDGE, LOSS
from peftbench.core.judging import SavedAnswer
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
        """As generation's; a judge that scores inside the run (where: run) is asked once first, so a
        run whose judge is away fails before it trains."""
        if task.judge is not None and task.judge.where == "run":
            Judge(task.judge).check()
        return super().split_encoding(task, tokenizer, training)

    def evaluate(self, trainer: Any, task: TaskSpec, data: PreparedData, split: str) -> Evaluation:
        texts, answers = self.generate(trainer, data, split)
        metrics = {LOSS: split_loss(trainer, getattr(data, split), split)}
        metrics |= text_metrics(answers, texts.references, task.language)
        categories = texts.categories or [""] * len(answers)
        ids = data.test_ids if split == "test" and data.test_ids else [None] * len(answers)
        saved = [
            SavedAnswer(split=split, index=i, id=i_d, question=q, reference=r, category=c, answer=a)
            for i, (i_d, q, r, c, a) in enumerate(
                zip(ids, texts.questions, texts.references, categories, answers, strict=True)
            )
        ]
        if task.judge is not None and task.judge.where == "run":
            items = [JudgeItem(s.question, s.reference, s.answer, s.category) for s in saved]
            scores = Judge(task.judge).score_all(items)
            metrics |= judge_metrics(scores, texts.categories, task.judge.category_groups)
        return Evaluation(metrics, answers, saved)
