"""`peftbench judge runs/<sweep>`: score the answers runs saved, from wherever the judge is reachable.

Runs of an instruction task save their validation and test answers (`answers.jsonl`,
core/judging.py) and need no judge to succeed; this step asks the judge for every saved answer that
judge has not scored yet, `max_concurrent` at a time with the settings' retries and timeouts, and
writes each score atomically as it arrives. A second call continues where a first one stopped (a
kill loses at most the replies in flight) and a call with nothing left asks nothing.

Which judge: each run's own (`judge:` of its task in the sweep), unless a judge file replaces it
(`--judge FILE`: JudgeSettings as YAML) or a server and model are named (`--url`, `--model`: the
run's judge with that server and model, or the default prompt for a run without one).

What stops the step: a judge that cannot be asked (unreachable, HTTP error, missing API key)
stops it after the replies in flight are written; a reply without a score is one line and the
step goes on. Every line names the judge, the run and the answer (`test/17`).
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path

from peftbench.core.errors import ConfigError, PeftbenchError, Problem
from peftbench.core.judge_settings import JudgeSettings
from peftbench.core.judging import (
    ANSWERS_FILE,
    JudgedScore,
    JudgeIdentity,
    SavedAnswer,
    UnreadableAnswers,
    read_answers,
    read_judge_file,
    read_scores,
    write_identity,
    write_score,
)
from peftbench.core.results import UnreadableResult, read_result
from peftbench.tasks.judge import Judge, JudgeItem, NoScore


@dataclass(frozen=True)
class JudgeChoice:
    """What the command line said about the judge: a settings file, or a server and model, or nothing."""

    settings: JudgeSettings | None = None
    url: str | None = None
    model: str | None = None

    def for_run(self, own: JudgeSettings | None) -> JudgeSettings | None:
        """The judge of one run: the file's, else the run's own with the named server/model, else None."""
        if self.settings is not None:
            return self.settings
        named = {k: v for k, v in (("url", self.url), ("model", self.model)) if v is not None}
        if own is not None:
            return own.model_copy(update=named) if named else own
        if "url" in named and "model" in named:
            return JudgeSettings.model_validate(named)
        return None


def judge_choice(judge_file: Path | None, url: str | None, model: str | None) -> JudgeChoice:
    """The command line's judge; a bad file is one ConfigError naming it, the key and the value."""
    if judge_file is None:
        return JudgeChoice(None, url, model)
    settings = read_judge_file(judge_file)
    return JudgeChoice(settings.model_copy(update={k: v for k, v in (("url", url), ("model", model)) if v}))


@dataclass(frozen=True)
class Pending:
    """One saved answer a judge has not scored yet."""

    run_dir: Path
    run_id: str
    answer: SavedAnswer


@dataclass
class JudgeTally:
    """What one judge did in this call, and the lines of what went wrong."""

    identity: JudgeIdentity
    runs: int = 0
    answers: int = 0
    already: int = 0
    scored: int = 0
    tokens_sent: int = 0
    tokens_received: int = 0
    problems: list[str] = field(default_factory=list)
    stopped: str | None = None  # why the step stopped asking this judge, when it did

    @property
    def left(self) -> int:
        return self.answers - self.already - self.scored


@dataclass
class JudgingReport:
    """One tally per judge; runs with nothing to judge, and why."""

    tallies: list[JudgeTally]
    not_judged: list[str] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return all(t.left == 0 for t in self.tallies)


def judge_sweep(sweep_dir: Path, choice: JudgeChoice) -> JudgingReport:
    """Score every saved answer of the sweep's successful runs that its judge has not scored yet."""
    work: dict[JudgeIdentity, tuple[JudgeSettings, JudgeTally, list[Pending]]] = {}
    not_judged: list[str] = []
    for run_dir, run_id, own in _runs(Path(sweep_dir), not_judged):
        settings = choice.for_run(own)
        if settings is None:
            not_judged.append(f"{run_id}: its task has no judge (give --judge FILE, or --url and --model)")
            continue
        identity = JudgeIdentity.of(settings)
        try:
            answers, done = read_answers(run_dir / ANSWERS_FILE), read_scores(run_dir, identity)
        except UnreadableAnswers as err:  # one run's broken file: said, the other runs judged
            not_judged.append(f"{run_id}: {err}")
            continue
        _, tally, pending = work.setdefault(identity, (settings, JudgeTally(identity), []))
        write_identity(run_dir, identity, settings)
        tally.runs += 1
        tally.answers += len(answers)
        tally.already += sum((a.split, a.index) in done for a in answers)
        pending += [Pending(run_dir, run_id, a) for a in answers if (a.split, a.index) not in done]
    for settings, tally, pending in work.values():
        _score(Judge(settings), tally, pending)
    return JudgingReport([t for _, t, _ in work.values()], not_judged)


def _runs(sweep_dir: Path, not_judged: list[str]) -> Iterator[tuple[Path, str, JudgeSettings | None]]:
    """(folder, run id, the task's judge) of each successful run that saved answers."""
    if not sweep_dir.is_dir():
        raise ConfigError([Problem(str(sweep_dir), "<folder>", "no such sweep folder")])
    for result_file in sorted(sweep_dir.glob("*/result.json")):
        run_dir = result_file.parent
        try:
            result = read_result(result_file)
        except UnreadableResult as err:
            not_judged.append(f"{run_dir.name}: {err}")
            continue
        if result.status != "success":
            not_judged.append(f"{result.run_id}: {result.status}, no answers to judge")
        elif not (run_dir / ANSWERS_FILE).is_file():
            not_judged.append(f"{result.run_id}: saved no answers (not an instruction task)")
        else:
            yield run_dir, result.run_id, result.spec.task.judge


def _score(judge: Judge, tally: JudgeTally, pending: list[Pending]) -> None:
    """Ask `max_concurrent` at a time; write each score as it arrives; stop at a judge that cannot answer."""
    queue = iter(pending)
    with ThreadPoolExecutor(max_workers=judge.settings.max_concurrent) as pool:
        running: dict[Future[JudgedScore], Pending] = {}

        def refill() -> None:
            while tally.stopped is None and len(running) < judge.settings.max_concurrent:
                item = next(queue, None)
                if item is None:
                    return
                running[pool.submit(_ask, judge, item.answer)] = item

        refill()
        while running:
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in finished:
                _record(future, running.pop(future), tally)
            refill()


def _ask(judge: Judge, answer: SavedAnswer) -> JudgedScore:
    verdict = judge.verdict(JudgeItem(answer.question, answer.reference, answer.answer, answer.category))
    return JudgedScore(
        split=answer.split,
        index=answer.index,
        category=answer.category,
        score=verdict.score,
        tokens_sent=verdict.tokens_sent,
        tokens_received=verdict.tokens_received,
    )


def _record(future: Future[JudgedScore], item: Pending, tally: JudgeTally) -> None:
    try:
        score = future.result()
    except PeftbenchError as err:
        line = f"judge {tally.identity.label}: run {item.run_id}, answer {item.answer.answer_id}: {err}"
        tally.problems.append(line)
        if not isinstance(err, NoScore) and tally.stopped is None:
            tally.stopped = line
        return
    write_score(item.run_dir, tally.identity, score)
    tally.scored += 1
    tally.tokens_sent += score.tokens_sent
    tally.tokens_received += score.tokens_received
