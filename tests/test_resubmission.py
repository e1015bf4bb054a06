"""What `sweep` and `resubmit` submit again, cancel first, or refuse (launch/resubmission.py)."""

from __future__ import annotations

from peftbench.core.spec import RunSpec
from peftbench.launch.resubmission import blocked_jobs_and_their_runs, plan_resubmission
from peftbench.launch.slurm_state import RunState
from tests.test_results import make_result


def runs_named(names: str) -> dict[str, RunSpec]:
    spec = make_result().spec
    return {name: spec.model_copy(update={"seed": i}) for i, name in enumerate(names)}


def test_cancelling_a_blocked_packed_job_resubmits_the_runs_it_held_with_it():
    """Job 7_0 packs a blocked child (its parent failed) and a pending neighbour; 7_1 and 8 stay."""
    run = runs_named("abcdef")
    states = [
        RunState(run["a"], "blocked", "PENDING", "7_0", "parent x failed"),
        RunState(run["b"], "pending", "PENDING", "7_0"),  # packed beside it: ends with the job
        RunState(run["c"], "pending", "PENDING", "7_1"),  # another task of the array: untouched
        RunState(run["d"], "blocked", "CANCELLED", "8"),  # Slurm ended it already: nothing to cancel
        RunState(run["e"], "failed", "FAILED", "9"),
        RunState(run["f"], "running", "RUNNING", "10"),
    ]
    jobs, neighbours = blocked_jobs_and_their_runs(states)
    assert jobs == ["7_0"]
    assert neighbours == [run["b"]]  # a itself is resubmitted as blocked (needs_submission)
    todo = plan_resubmission(states)
    assert todo.submit == [run["a"], run["d"], run["e"], run["b"]] and todo.cancel == ["7_0"]
    assert (todo.refused, todo.runs, todo.left_alone) == ("", 6, 2)


def test_nothing_is_submitted_while_any_runs_state_is_unknown():
    run = runs_named("abc")
    states = [
        RunState(run["a"], "failed", "FAILED", "9"),
        RunState(run["b"], "unknown", "?", "10", "the scheduler did not answer: squeue: exit 1"),
        RunState(run["c"], "unknown", "?", "11", "the scheduler did not answer: squeue: exit 1"),
    ]
    todo = plan_resubmission(states)
    assert todo.refused == (
        "the state of 2 submitted run(s) is unknown: the scheduler did not answer: squeue: exit 1"
    )


def test_runs_done_pending_or_running_are_left_alone():
    run = runs_named("abcd")
    states = [
        RunState(run["a"], "done"),
        RunState(run["b"], "pending", "PENDING", "1_0"),
        RunState(run["c"], "unsubmitted"),
        RunState(run["d"], "interrupted", "", "1_1"),
    ]
    todo = plan_resubmission(states)
    assert todo.submit == [run["c"], run["d"]] and todo.cancel == [] and not todo.refused


def test_a_local_resubmit_reruns_every_run_without_a_success_result(sweep_file, tmp_path):
    from peftbench.core.paths import RunPaths
    from peftbench.core.results import write_result
    from peftbench.launch.resubmission import local_reruns
    from peftbench.plan.sweep_plan import load_plan

    sweep = {"name": "again", "models": ["minilm-l6"], "tasks": ["movie_sentiment"], "seeds": [0, 1, 2]}
    plan = load_plan(sweep_file({**sweep, "methods": {"bitfit": {}}}), "local", tmp_path / "runs")
    done, failed, never = plan.runs
    for run, status in ((done, "success"), (failed, "failed")):
        result = make_result().model_copy(update={"run_id": run.run_id, "spec": run, "status": status})
        write_result(RunPaths.of(plan.runs_dir, run).result, result)
    assert local_reruns(plan) == [failed, never]
