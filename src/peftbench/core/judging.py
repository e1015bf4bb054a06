"""Judging apart from training: the answers a run saves, and the scores a judge gives them later.

A run of an instruction task saves every validation and test answer beside what it answered
(`answers.jsonl`: question, reference, category, answer), so a judge needs nothing else: no data
set, no model, no GPU. `peftbench judge` (tasks/judging_step.py) scores them wherever the judge is
reachable and writes one file per score as it arrives, atomically:

    runs/<sweep>/<run_id>/judged/<judge key>/judge.json          who judged (model, URL host, prompt)
    runs/<sweep>/<run_id>/judged/<judge key>/<split>/<index>.json  one score, its tokens

A score file exists or does not: a judge step killed half way loses at most the replies in flight,
and the next call scores only what has no file (resumable, idempotent). Judges are told apart by
their identity, (model, sha256 of the prompt, URL host), so several judges' scores sit side by side
and a second judge never costs a retraining (the judge is not part of the run id).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from peftbench.core.directions import JUDGE, PER_CATEGORY
from peftbench.core.errors import ConfigError, Problem, UnreadableFile
from peftbench.core.files import write_json_atomic
from peftbench.core.json_lines import read_json_lines, write_json_lines
from peftbench.core.judge_settings import JudgeSettings

ANSWERS_FILE = "answers.jsonl"
JUDGED_FOLDER = "judged"
IDENTITY_FILE = "judge.json"


class SavedAnswer(BaseModel):
    """One generated answer with what it answered: all a judge reads."""

    model_config = ConfigDict(extra="forbid")

    split: str = Field(description="validation or test.")
    index: int = Field(ge=0, description="0-based position in the split.")
    id: int | str | None = Field(None, description="The example's own id in the data, if it has one.")
    question: str
    reference: str
    category: str = ""
    answer: str

    @property
    def answer_id(self) -> str:
        """How messages name the answer: `test/17`."""
        return f"{self.split}/{self.index}"


class JudgedScore(BaseModel):
    """One answer's score from one judge, and what asking cost."""

    model_config = ConfigDict(extra="forbid")

    split: str
    index: int = Field(ge=0)
    category: str = ""
    score: float = Field(ge=0, le=1)
    tokens_sent: int = Field(0, ge=0, description="The server's usage.prompt_tokens (0 when it gives none).")
    tokens_received: int = Field(0, ge=0, description="The server's usage.completion_tokens.")


@dataclass(frozen=True)
class JudgeIdentity:
    """Who scored: the model, the prompt it was given (sha256) and the server's host."""

    model: str
    prompt_sha256: str
    host: str

    @classmethod
    def of(cls, settings: JudgeSettings) -> JudgeIdentity:
        host = urlsplit(settings.url).netloc.rsplit("@", 1)[-1]  # never a user:password
        return cls(settings.model, hashlib.sha256(prompt_text(settings.prompt).encode()).hexdigest(), host)

    @property
    def key(self) -> str:
        """The folder name: readable, and unique per identity (`gpt-4o.api.openai.com.3f2a9c1b`)."""
        readable = re.sub(r"[^A-Za-z0-9._-]+", "-", f"{self.model}.{self.host}").strip("-.")
        return f"{readable[:80]}.{self.prompt_sha256[:8]}"

    @property
    def label(self) -> str:
        """How tables name the judge: `gpt-4o @ api.openai.com, prompt 3f2a9c1b`."""
        return f"{self.model} @ {self.host}, prompt {self.prompt_sha256[:8]}"


class UnreadableAnswers(UnreadableFile):
    """An answers.jsonl or score file that is not what it should be; names the file and line."""


def write_answers(path: Path, answers: Sequence[SavedAnswer]) -> None:
    """answers.jsonl, atomically; no file at all when there are none (a task that generates nothing)."""
    if not answers:
        return

    write_json_lines(path, (answer.model_dump(mode="json") for answer in answers))


def read_answers(path: Path) -> list[SavedAnswer]:
    return read_json_lines(path, SavedAnswer, UnreadableAnswers)


def judge_folder(run_dir: Path, identity: JudgeIdentity) -> Path:
    return Path(run_dir) / JUDGED_FOLDER / identity.key


def score_path(run_dir: Path, identity: JudgeIdentity, split: str, index: int) -> Path:
    return judge_folder(run_dir, identity) / split / f"{index}.json"


def write_identity(run_dir: Path, identity: JudgeIdentity, settings: JudgeSettings) -> None:
    """judge.json, once per run and judge: the identity, and the prompt itself for the record."""
    path = judge_folder(run_dir, identity) / IDENTITY_FILE
    if not path.is_file():
        record = {"model": identity.model, "host": identity.host, "prompt_sha256": identity.prompt_sha256}
        write_json_atomic(path, record | {"prompt": settings.prompt})


def write_score(run_dir: Path, identity: JudgeIdentity, score: JudgedScore) -> None:
    write_json_atomic(score_path(run_dir, identity, score.split, score.index), score.model_dump())


def read_scores(run_dir: Path, identity: JudgeIdentity) -> dict[tuple[str, int], JudgedScore]:
    """Every score this judge gave the run's answers, by (split, index)."""
    scores = {}
    for path in sorted(judge_folder(run_dir, identity).glob("*/*.json")):
        try:
            score = JudgedScore.model_validate_json(path.read_bytes())
        except (OSError, ValidationError) as err:
            raise UnreadableAnswers(f"{path}: {err}") from err
        scores[score.split, score.index] = score
    return scores


def judges_of(run_dir: Path) -> list[JudgeIdentity]:
    """Every judge that scored some of this run's answers (its judge.json)."""
    found = []
    for path in sorted((Path(run_dir) / JUDGED_FOLDER).glob(f"*/{IDENTITY_FILE}")):
        record = json.loads(path.read_text(encoding="utf-8"))
        found.append(JudgeIdentity(record["model"], record["prompt_sha256"], record["host"]))
    return found


def read_judge_file(path: Path) -> JudgeSettings:
    """JudgeSettings from a YAML file (its keys, or a sweep-style `judge:` block); every problem is one
    ConfigError naming the file, the key and the value."""
    import yaml

    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as err:
        raise ConfigError([Problem(str(path), "<file>", f"cannot read it: {err}")]) from err
    if isinstance(data, dict) and isinstance(data.get("judge"), dict):
        data = data["judge"]
    try:
        return JudgeSettings.model_validate(data)
    except ValidationError as err:
        raise ConfigError(
            [
                Problem(str(path), ".".join(map(str, e["loc"])) or "<top level>", e["msg"], e.get("input"))
                for e in err.errors()
            ]
        ) from err


def judge_metrics(
    scores: Sequence[float], categories: Sequence[str] | None, groups: Mapping[str, str] | None = None
) -> dict[str, float]:
    """`judge`: the mean score per category, averaged over categories; `judge/<category>` each.

    `groups` maps a category to the one it is averaged in (BELLE's table puts math and code in
    "others": 10 classes, 9 columns, the macro average over the 9). Without categories, `judge`
    is the plain mean.
    """
    if not scores:
        return {}
    if categories is None:
        return {JUDGE: sum(scores) / len(scores)}
    by_category: dict[str, list[float]] = defaultdict(list)
    for score, category in zip(scores, categories, strict=True):
        by_category[(groups or {}).get(category, category)].append(score)
    per = {f"{PER_CATEGORY}{c}": sum(s) / len(s) for c, s in sorted(by_category.items())}
    return {JUDGE: sum(per.values()) / len(per), **per}


@dataclass(frozen=True)
class JudgedRun:
    """One judge's verdict on one run: its metrics per split once every answer is scored."""

    answers: int
    scored: int
    tokens_sent: int
    tokens_received: int
    metrics: dict[str, dict[str, float]]  # split -> judge metrics; empty until every answer is scored

    @property
    def complete(self) -> bool:
        return self.answers > 0 and self.scored == self.answers


def judged_run(run_dir: Path, identity: JudgeIdentity, groups: Mapping[str, str] | None) -> JudgedRun:
    """What `identity` made of the run's saved answers (none saved: 0 answers, not judged)."""
    answers_file = Path(run_dir) / ANSWERS_FILE
    answers = read_answers(answers_file) if answers_file.is_file() else []
    scores = read_scores(run_dir, identity)
    scored = [scores[a.split, a.index] for a in answers if (a.split, a.index) in scores]
    sent = sum(s.tokens_sent for s in scores.values())
    received = sum(s.tokens_received for s in scores.values())
    complete = bool(answers) and len(scored) == len(answers)
    metrics = split_metrics(scored, any(a.category for a in answers), groups) if complete else {}
    return JudgedRun(len(answers), len(scored), sent, received, metrics)


def split_metrics(
    scored: Sequence[JudgedScore], has_categories: bool, groups: Mapping[str, str] | None
) -> dict[str, dict[str, float]]:
    """The judge metrics of each split's scores."""
    metrics = {}
    for split in sorted({s.split for s in scored}):
        mine = [s for s in scored if s.split == split]
        categories = [s.category for s in mine] if has_categories else None
        metrics[split] = judge_metrics([s.score for s in mine], categories, groups)
    return metrics


def prompt_text(prompt: str | dict[str, str]) -> str:
    """The text a judge's prompt is hashed by: a template as it is, one per category as sorted JSON."""
    return prompt if isinstance(prompt, str) else json.dumps(prompt, sort_keys=True, ensure_ascii=False)
