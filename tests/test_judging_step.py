"""`peftbench judge`: runs generate without a judge; the saved answers are scored later, resumably.

The judge is a real HTTP server on localhost that speaks chat completions (tests/test_judge.py's
`chat_server`): a stand-in for the judge model, which cannot run here, scoring each answer by a rule.
The runs are real: a tiny Llama trained a step on the BELLE fixture, its answers generated and saved.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from peftbench.core.judge_settings import JudgeSettings
from peftbench.core.judging import JudgeIdentity, judge_folder, judged_run, judges_of, read_answers
from peftbench.core.paths import RunPaths
from peftbench.run.one import run_one
from peftbench.tasks.judging_step import JudgeChoice, judge_choice, judge_sweep
from tests.test_generation import decoder_ref, run_spec
from tests.test_instruction import BELLE, TAGGED_PROMPT, tagged_judge, tagged_score
from tests.test_judge import chat_server, completion

REPO = Path(__file__).resolve().parents[1]
NOWHERE = "http://127.0.0.1:9/v1"  # the discard port: nothing answers there
SHORT: dict[str, Any] = {"max_steps": 1, "max_new_tokens": 4, "eval_strategy": "no"}
APART = JudgeSettings(url=NOWHERE, model="stand-in", prompt=TAGGED_PROMPT, max_concurrent=2)


def tagged_judge_with_usage(body: dict[str, Any]) -> tuple[int, bytes]:
    """tagged_judge's reply, with the token counts a real server reports."""
    status, payload = tagged_judge(body)
    reply = json.loads(payload)
    reply["usage"] = {"prompt_tokens": len(body["messages"][0]["content"]), "completion_tokens": 3}
    return status, json.dumps(reply).encode()


@pytest.fixture(scope="module")
def generated(tiny_decoder: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A sweep folder of two real runs (full FT and LoRA) whose task's judge answers nothing."""
    sweep = tmp_path_factory.mktemp("generated") / "belle"
    task = BELLE.model_copy(update={"judge": APART, "metric": "judge"})
    for method in ("full", "lora"):
        spec = run_spec(decoder_ref(tiny_decoder), task, method, **SHORT)
        result = run_one(spec, sweep / spec.run_id)
        assert result.status == "success", result.error
    return sweep


@pytest.fixture
def sweep(generated: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(generated, tmp_path / "belle"))


def run_dirs(sweep: Path) -> list[Path]:
    return sorted(p.parent for p in sweep.glob("*/result.json"))


def score_files(sweep: Path, identity: JudgeIdentity) -> set[Path]:
    return {p for d in run_dirs(sweep) for p in judge_folder(d, identity).glob("*/*.json")}


def answers_of(sweep: Path) -> int:
    return sum(len(read_answers(RunPaths(d).answers)) for d in run_dirs(sweep))


def test_judging_scores_every_saved_answer_once_with_its_tokens(sweep: Path):
    with chat_server(tagged_judge_with_usage) as server:
        report = judge_sweep(sweep, JudgeChoice(url=server.url))
        again = judge_sweep(sweep, JudgeChoice(url=server.url))
        asked, most_in_flight = len(server.requests), server.most_in_flight
    settings = APART.model_copy(update={"url": server.url})
    identity = JudgeIdentity.of(settings)
    n = answers_of(sweep)
    assert n == 2 * (8 + 8) and asked == n  # the second call asked nothing
    assert most_in_flight <= APART.max_concurrent  # the judge settings' concurrency, across runs
    (tally,) = report.tallies
    assert (tally.runs, tally.answers, tally.scored, tally.already, tally.left) == (2, n, n, 0, 0)
    assert again.tallies[0].scored == 0 and again.tallies[0].already == n and again.complete
    assert tally.tokens_received == 3 * n and tally.tokens_sent > 0
    for run_dir in run_dirs(sweep):
        answers = read_answers(RunPaths(run_dir).answers)
        judged = judged_run(run_dir, identity, None)
        assert judged.complete and judged.tokens_received == 3 * len(answers)
        for split in ("validation", "test"):
            mine = [a for a in answers if a.split == split]
            per: dict[str, list[float]] = {}
            for a in mine:
                per.setdefault(a.category, []).append(tagged_score(a.question, a.answer))
            means = {c: sum(s) / len(s) for c, s in per.items()}
            assert judged.metrics[split]["judge"] == pytest.approx(sum(means.values()) / len(means))
        assert judges_of(run_dir) == [identity]


def test_a_second_judge_scores_beside_the_first(sweep: Path):
    second_prompt = "Grade it.\n" + TAGGED_PROMPT
    with chat_server(tagged_judge) as server:
        judge_sweep(sweep, JudgeChoice(url=server.url))
        first = JudgeIdentity.of(APART.model_copy(update={"url": server.url}))
        before = {p: p.read_bytes() for p in score_files(sweep, first)}
        other = APART.model_copy(update={"url": server.url, "model": "second", "prompt": second_prompt})
        report = judge_sweep(sweep, JudgeChoice(settings=other))
    second = JudgeIdentity.of(other)
    assert second.key != first.key and report.tallies[0].identity == second and report.complete
    assert {p: p.read_bytes() for p in score_files(sweep, first)} == before  # the first judge's, untouched
    assert len(score_files(sweep, second)) == answers_of(sweep)
    assert all(judges_of(d) == sorted([first, second], key=lambda i: i.key) for d in run_dirs(sweep))


def test_a_judge_killed_half_way_continues_where_it_stopped(sweep: Path):
    """A real `peftbench judge` process is killed (SIGKILL) mid-way, then run again: every answer has
    one score, and no answer scored before the kill is asked again."""
    env = os.environ | {"PYTHONPATH": str(REPO / "src")}
    with chat_server(tagged_judge, delay_s=0.15) as server:
        identity = JudgeIdentity.of(APART.model_copy(update={"url": server.url}))
        command = [sys.executable, "-m", "peftbench", "judge", str(sweep), "--url", server.url]
        first = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while len(score_files(sweep, identity)) < 6 and time.monotonic() < deadline:
            time.sleep(0.05)
        first.send_signal(signal.SIGKILL)
        first.wait()
        # a request the killed process had sent may still be read by a handler thread: count after
        # they are done (seen in CI: one counted after the kill, then once more in the second run)
        settled = time.monotonic() + 5
        while server.in_flight and time.monotonic() < settled:
            time.sleep(0.05)
        time.sleep(server.delay_s + 0.1)
        scored_at_kill = len(score_files(sweep, identity))
        asked_at_kill = len(server.requests)
        second = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
        asked = len(server.requests)
    n = answers_of(sweep)
    assert first.returncode == -signal.SIGKILL and 6 <= scored_at_kill < n
    assert second.returncode == 0, second.stdout + second.stderr
    assert f"{n - scored_at_kill} scored now, {scored_at_kill} before, 0 left" in second.stdout
    assert asked - asked_at_kill == n - scored_at_kill  # only what had no score was asked again
    assert asked_at_kill - scored_at_kill <= APART.max_concurrent  # at most the replies in flight were lost
    assert len(score_files(sweep, identity)) == n
    assert not list(sweep.rglob("*.tmp*"))


def test_an_unreachable_judge_is_one_line_and_loses_nothing(sweep: Path):
    with chat_server(tagged_judge) as server:
        url = server.url
        judge_sweep(sweep, JudgeChoice(url=url))
    identity = JudgeIdentity.of(APART.model_copy(update={"url": url}))
    for path in sorted(score_files(sweep, identity))[::2]:
        path.unlink()
    kept = {p: p.read_bytes() for p in score_files(sweep, identity)}
    report = judge_sweep(sweep, JudgeChoice(url=url))  # the server is gone: nothing answers at its URL
    (tally,) = report.tallies
    assert tally.scored == 0 and tally.left == answers_of(sweep) - len(kept) > 0 and not report.complete
    assert tally.stopped is not None and len(tally.problems) <= APART.max_concurrent
    line = tally.problems[0]
    assert "\n" not in line and f"stand-in @ {url.split('/')[2]}" in line and "unreachable" in line
    assert re.search(r"run [0-9a-f]{12}, answer (validation|test)/\d+: ", line)
    assert {p: p.read_bytes() for p in score_files(sweep, identity)} == kept


def test_a_reply_without_a_score_names_the_answer_and_the_rest_are_scored(sweep: Path):
    def judge_refusing_one(body: dict[str, Any]) -> tuple[int, bytes]:
        if "<a>" in body["messages"][0]["content"] and refusing[0] in body["messages"][0]["content"]:
            return completion("I cannot grade this.")
        return tagged_judge(body)

    first_run = run_dirs(sweep)[0]
    target = read_answers(RunPaths(first_run).answers)[3]
    refusing = [f"<q>{target.question}</q>"]
    with chat_server(judge_refusing_one) as server:
        report = judge_sweep(sweep, JudgeChoice(url=server.url))
    (tally,) = report.tallies
    same_question = sum(
        a.question == target.question for d in run_dirs(sweep) for a in read_answers(RunPaths(d).answers)
    )
    assert tally.stopped is None and len(tally.problems) == same_question == tally.left
    assert tally.scored == answers_of(sweep) - same_question
    line = next(p for p in tally.problems if first_run.name in p)
    assert f"run {first_run.name}, answer {target.answer_id}:" in line
    assert "without a usable score" in line and "stand-in @ 127.0.0.1" in line


def test_a_missing_api_key_variable_is_one_line(sweep: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("STAND_IN_KEY", raising=False)
    with chat_server(tagged_judge) as server:
        keyed = APART.model_copy(update={"url": server.url, "api_key_env": "STAND_IN_KEY"})
        report = judge_sweep(sweep, JudgeChoice(settings=keyed))
        assert not server.requests
    (tally,) = report.tallies
    assert tally.stopped is not None and tally.scored == 0
    assert "api_key_env is 'STAND_IN_KEY', but $STAND_IN_KEY is not set" in tally.problems[0]
    named = r"^judge stand-in @ 127\.0\.0\.1:\d+, prompt \w+: run \w+, answer \w+/\d+: "
    assert re.search(named, tally.problems[0])


def test_a_bad_judge_file_names_the_file_and_the_key(tmp_path: Path):
    from peftbench.core.errors import ConfigError

    bad = tmp_path / "judge.yaml"
    bad.write_text("judge: {url: ftp://x, model: m, max_concurrent: 0}\n", encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        judge_choice(bad, None, None)
    assert str(bad) in str(err.value) and "max_concurrent" in str(err.value)
    good = tmp_path / "good.yaml"
    good.write_text("url: http://h:1/v1\nmodel: m\n", encoding="utf-8")
    assert judge_choice(good, None, "other").for_run(APART).model == "other"


def test_a_broken_answers_file_is_one_line_and_the_other_runs_are_judged(sweep: Path):
    broken, fine = run_dirs(sweep)
    RunPaths(broken).answers.write_text('{"split": "test"}\n', encoding="utf-8")
    with chat_server(tagged_judge) as server:
        report = judge_sweep(sweep, JudgeChoice(url=server.url))
    (tally,) = report.tallies
    assert tally.runs == 1 and tally.left == 0 and tally.scored == len(read_answers(RunPaths(fine).answers))
    assert report.not_judged == [f"{broken.name}: {RunPaths(broken).answers}:1: Field required"]
