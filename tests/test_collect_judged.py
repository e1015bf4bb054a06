"""collect and the report with judges apart from training: which judge, runs not yet judged, agreement.

The runs are real (tests/test_judging_step.py's `generated`); the judges are stand-ins on localhost.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from peftbench.collect.category_table import category_table
from peftbench.collect.judge_agreement import agreement_rows, paired_scores
from peftbench.collect.merge import collect, select_cells
from peftbench.collect.outputs import write_collection
from peftbench.collect.tables import cost_table, main_table
from peftbench.core.judging import JudgeIdentity, judged_run
from peftbench.tasks.judging_step import JudgeChoice, judge_sweep
from tests import test_judging_step
from tests.test_instruction import tagged_judge, tagged_score
from tests.test_judge import chat_server, completion
from tests.test_judging_step import APART, run_dirs, tagged_judge_with_usage

generated, sweep = test_judging_step.generated, test_judging_step.sweep  # the runs, and a copy per test
SECOND_PROMPT = "Second opinion.\n" + APART.prompt


def harsher_judge(body: dict[str, Any]) -> tuple[int, bytes]:
    """Another stand-in: the tagged rule squared, so the two judges agree in rank but not in value."""
    _, payload = tagged_judge(body)
    first = float(json.loads(payload)["choices"][0]["message"]["content"].splitlines()[-1])
    return completion(f"Stricter.\n{first**2}")


def test_runs_not_yet_judged_are_said_so_never_zero(sweep: Path):
    collection = collect([sweep])
    frame = collection.frame
    assert (frame["status"] == "success").all() and "test_judge" not in frame
    assert set(frame["judged"]) == {"not judged (0 of 16 answers scored)"}
    assert set(frame["judge"]) == {JudgeIdentity.of(APART).label}
    selection = select_cells(frame)
    assert not len(selection.best) and len(selection.skipped) == 2
    assert all("not yet judged by stand-in @ 127.0.0.1:9" in s for s in selection.skipped)
    table = write_collection([sweep], sweep).table
    assert "not yet judged by stand-in" in table


def test_collect_uses_the_sweep_judge_or_the_one_named(sweep: Path, tmp_path: Path):
    with chat_server(tagged_judge) as first, chat_server(harsher_judge) as second:
        judge_sweep(sweep, JudgeChoice(url=first.url))
        other = APART.model_copy(update={"url": second.url, "model": "harsher", "prompt": SECOND_PROMPT})
        judge_sweep(sweep, JudgeChoice(settings=other))
    sweeps_own = APART.model_copy(update={"url": first.url})
    frame = collect([sweep], sweeps_own).frame
    for _, row in frame.iterrows():
        judged = judged_run(Path(row["run_dir"]), JudgeIdentity.of(sweeps_own), None)
        assert row["judged"] == "judged" and row["test_judge"] == pytest.approx(
            judged.metrics["test"]["judge"]
        )
        assert row["judge"] == JudgeIdentity.of(sweeps_own).label
        assert row["judge_tokens_sent"] == 0  # this stand-in reports no usage
    harsh = collect([sweep], other).frame
    assert set(harsh["judge"]) == {JudgeIdentity.of(other).label}
    assert (harsh["test_judge"] <= frame["test_judge"]).all() and (
        harsh["test_judge"] < frame["test_judge"]
    ).any()
    best = select_cells(frame).best
    assert len(best) == 2 and set(best["judge"]) == {JudgeIdentity.of(sweeps_own).label}
    judge_file = tmp_path / "harsher.yaml"
    judge_file.write_text(json.dumps({"judge": other.model_dump(mode="json")}), encoding="utf-8")
    from typer.testing import CliRunner

    from peftbench.cli import app

    shown = CliRunner().invoke(
        app, ["collect", str(sweep), "--judge", str(judge_file), "--out", str(tmp_path)]
    )
    assert shown.exit_code == 0, shown.output
    written = (tmp_path / "results.csv").read_text(encoding="utf-8")
    assert JudgeIdentity.of(other).label in written, written
    assert "| judge A | judge B | category | answers | Pearson | Spearman |" in shown.output


def test_the_tables_name_the_judge_and_its_tokens(sweep: Path):
    with chat_server(tagged_judge_with_usage) as server:
        judge_sweep(sweep, JudgeChoice(url=server.url))
    settings = APART.model_copy(update={"url": server.url})
    label = JudgeIdentity.of(settings).label
    frame = collect([sweep], settings).frame
    selection = select_cells(frame)
    cost = cost_table(selection.best, selection)
    headers = [c.header for c in cost.columns]
    assert headers[-2:] == ["judge tokens sent", "judge tokens received"]
    for row, (_, cell) in zip(cost.rows, selection.best.iterrows(), strict=True):
        run = frame[frame["run_id"] == cell["run_ids"]].iloc[0]
        assert row[-2:] == [run["judge_tokens_sent"], run["judge_tokens_received"]] and row[-1] == 3 * 16
    assert any(f"Judge scores by {label}" in note for note in cost.notes)
    assert any(f"Judge scores by {label}" in note for note in main_table(selection.best, selection).notes)
    category = category_table(selection.best, selection)
    assert category is not None and all(row[-1] == label for row in category.rows)


def test_agreement_of_two_judges_over_the_same_answers(sweep: Path):
    with chat_server(tagged_judge) as first, chat_server(harsher_judge) as second:
        judge_sweep(sweep, JudgeChoice(url=first.url))
        other = APART.model_copy(update={"url": second.url, "model": "harsher", "prompt": SECOND_PROMPT})
        judge_sweep(sweep, JudgeChoice(settings=other))
    scores = paired_scores(run_dirs(sweep))
    rows = agreement_rows(scores)
    overall = rows[0]
    n = len(scores) // 2
    assert overall[2] == "all" and overall[3] == n
    by_judge = {
        j: part.sort_values(["run", "split", "index"])["score"].to_numpy()
        for j, part in scores.groupby("judge")
    }
    a, b = (by_judge[k] for k in sorted(by_judge))
    assert overall[4] == pytest.approx(np.corrcoef(a, b)[0, 1])
    assert overall[5] == pytest.approx(1.0)  # squaring keeps the order: ranks agree exactly
    categories = {r[2] for r in rows[1:]}
    assert categories == set(scores["category"]) and sum(r[3] for r in rows[1:]) == n
    assert tagged_score("ab", "c") ** 2 <= tagged_score("ab", "c")


def test_a_judge_with_one_prompt_per_category_has_an_identity_of_its_own():
    """BELLE's judge gives one template per category: hashed as sorted JSON, never as a str method."""
    from peftbench.core.judge_settings import JudgeSettings
    from peftbench.core.judging import JudgeIdentity

    one = JudgeSettings(url="http://judge:8000/v1", model="m", prompt="Score {answer}")
    per_category = {"math": "Score {answer} ({category})", "*": "Score {answer}"}
    belle = JudgeSettings(url="http://judge:8000/v1", model="m", prompt=per_category)
    reordered = JudgeSettings(
        url="http://judge:8000/v1", model="m", prompt=dict(reversed(per_category.items()))
    )
    assert JudgeIdentity.of(belle) != JudgeIdentity.of(one)
    assert JudgeIdentity.of(belle) == JudgeIdentity.of(reordered)
