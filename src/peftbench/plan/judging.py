"""Which step judges a sweep's answers, and whether an inside-the-run judge can be reached at all.

A task's judge works apart from its runs by default (`where: apart`: runs save their answers and
`peftbench judge` scores them from wherever the judge is reachable); the plan says so as a note. A
judge inside the run (`where: run`) is asked from the compute nodes: on a site whose nodes are
offline (its profile sets `HF_HUB_OFFLINE: "1"` in the container's env) that works only for a
server on the site, so the URL's host must be one of the profile's `site_hosts`; otherwise the
sweep is refused before anything is submitted, instead of every run failing at its first second.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from peftbench.core.errors import Problem
from peftbench.core.spec import RunSpec, TaskSpec
from peftbench.plan.schema import ClusterProfile


def judged_tasks(runs: list[RunSpec]) -> list[TaskSpec]:
    """Each task with a judge once, in sweep order."""
    return list({r.task.name: r.task for r in runs if r.task.judge is not None}.values())


def judge_notes(runs: list[RunSpec], sweep_name: str, runs_root: str, file: str) -> list[Problem]:
    """Per judged task: which step will judge its answers."""
    notes = []
    for task in judged_tasks(runs):
        judge = task.judge
        assert judge is not None
        who = f"{judge.model} at {judge.url}"
        if judge.where == "run":
            message = f"Each run asks its judge ({who}) itself, after generating (where: run)."
        else:
            message = (
                f"Runs only generate and save their answers; `peftbench judge {runs_root}/{sweep_name}` "
                f"scores them with {who}, from wherever it is reachable (where: apart)."
            )
        notes.append(Problem(file, f"tasks.{task.name}.judge", message))
    return notes


def judge_problems(runs: list[RunSpec], profile: ClusterProfile, file: str) -> list[Problem]:
    """An inside-the-run judge the site's offline nodes cannot reach: one problem per task."""
    if not profile.nodes_offline:
        return []
    problems = []
    for task in judged_tasks(runs):
        judge = task.judge
        assert judge is not None
        host = urlsplit(judge.url).hostname or ""
        if judge.where != "run" or host in profile.site_hosts:
            continue
        message = (
            f"An inside-the-run judge at {judge.url}: the compute nodes of '{profile.name}' are offline "
            f"(HF_HUB_OFFLINE=1 in {profile.file}), and {host!r} is not one of its site_hosts "
            f"{profile.site_hosts}. Judge apart (where: apart, then `peftbench judge`), or add the "
            "host to site_hosts if the server is on the site."
        )
        problems.append(Problem(file, f"tasks.{task.name}.judge.where", message, judge.where, ("apart",)))
    return problems
