"""The `peftbench` command: each verb parses, calls one room and prints through `views`."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
import typer.core
from rich.text import Text

from peftbench import plan_views, views
from peftbench.clusters_cli import clusters_app
from peftbench.core.errors import ConfigError, unknown_name
from peftbench.core.spec import RunSpec
from peftbench.launch.slurm_queries import one_command
from peftbench.options import (
    Cluster,
    Force,
    JudgeFile,
    JudgeModel,
    JudgeUrl,
    OutDir,
    Profiles,
    RunsDir,
    SweepDirs,
    SweepFile,
    SweepFolder,
    Verbs,
    YamlRunsDir,
    config_checked,
    fail,
    one_line,
)
from peftbench.plan.sweep_plan import SweepPlan, load_plan
from peftbench.views import console, err_console

if TYPE_CHECKING:
    from peftbench.launch.claims import Claim


app = typer.Typer(
    cls=Verbs,
    no_args_is_help=True,
    add_completion=False,
    help="Compare full fine-tuning, LoRA, BitFit and prompt tuning: sweeps, runs, status, tables.",
)


@app.callback()
def _one_command(ctx: typer.Context) -> None:
    """A Slurm daemon silent once is not asked again in this command: one timeout, not one per call."""
    ctx.with_resource(one_command())


QUEUE_NOT_READ = 3  # `status` showed the runs, but squeue or sacct could not be read: ask again later


def _plan(
    sweep_file: Path,
    cluster: str,
    runs_dir: Path | None,
    profiles: Path | None,
    submitting: bool = True,
    **kw: bool,
) -> SweepPlan:
    from peftbench.launch.slurm_cluster import use_cluster

    with config_checked():
        plan = load_plan(sweep_file, cluster, runs_dir, profiles=profiles, submitting=submitting, **kw)
    use_cluster(plan.profile)  # sweep, status and resubmit all ask the profile's own cluster
    return plan


def _warn(plan: SweepPlan) -> None:
    views.print_warnings(plan)


@app.command()
def sweep(
    sweep_file: SweepFile,
    cluster: Cluster = "local",
    runs_dir: RunsDir = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the plan; run nothing.")] = False,
    profiles: Profiles = None,
    force: Force = False,
) -> None:
    """Validate a sweep, then run (local) or submit (Slurm) every run without a success result."""
    plan = _plan(sweep_file, cluster, runs_dir, profiles, submitting=not dry_run, force=force)
    if dry_run:
        _print_plan(plan)
    _warn(plan)
    if dry_run:
        return
    with _one_writer(plan, "sweep"):
        if plan.profile.launcher == "local":
            _run_locally(plan, plan.runs)
        else:
            _submit(plan, _status_command(sweep_file, cluster, runs_dir, profiles))


@app.command("plan")
def plan_command(
    sweep_file: SweepFile, cluster: Cluster = "local", runs_dir: RunsDir = None, profiles: Profiles = None
) -> None:
    """Estimate each run's GPU memory (weights, training state, activations); flag what cannot fit."""
    plan = _plan(sweep_file, cluster, runs_dir, profiles, submitting=False, check_memory=False)
    rows = plan.memory_table()
    plan_views.print_memory_plan(plan, rows)
    cost = plan.cost()
    plan_views.print_time_plan(plan, cost)
    plan_views.print_cost(cost)
    _warn(plan)
    refused = sum(row.refused for row in rows)
    if refused:
        err_console.print(
            f"[red]{refused} run(s) do not fit their GPUs[/red]: `sweep` refuses to submit them."
        )
        raise typer.Exit(code=2)


@app.command()
def status(
    sweep_file: SweepFile,
    cluster: Cluster = "local",
    runs_dir: RunsDir = None,
    by: Annotated[
        str, typer.Option(help="'run' for a row per run, or keys to group by: method,task,model")
    ] = "run",
    profiles: Profiles = None,
    watch: Annotated[bool, typer.Option(help="Redraw until every run has ended (or Ctrl-C).")] = False,
    every: Annotated[float, typer.Option(help="Seconds between redraws of --watch (5 at least).")] = 30.0,
) -> None:
    """Where every run of a sweep stands: done, running, pending, unknown, failed (why), interrupted, ...
    Exits 3 when squeue or sacct could not be read: one line on stderr says which, and what is shown."""
    from peftbench.launch.slurm_state import sweep_report
    from peftbench.launch.watch import WatchTooOften, watch_until_ended

    keys = _group_keys(by)
    plan = _plan(sweep_file, cluster, runs_dir, profiles, submitting=False)
    with one_line(WatchTooOften, code=2):
        if watch:  # the period is checked before the first query
            return watch_until_ended(plan.runs, plan.runs_dir, every, views.print_watch)
    report = sweep_report(plan.runs, plan.runs_dir)
    views.print_status(plan.spec.name, report.runs, by, keys)
    views.print_plain(plan.progress().line())
    if report.unread:
        views.print_unread(report)
        raise typer.Exit(code=QUEUE_NOT_READ)


def _group_keys(by: str) -> list[str]:
    """`--by`: none for a row per run, else keys of GROUP_KEYS; exit 2 naming the first unknown one."""
    from peftbench.launch.slurm_state import GROUP_KEYS

    if by == "run":
        return []
    keys = [k.strip() for k in by.split(",")]
    bad = next((k for k in keys if k not in GROUP_KEYS), None)
    if bad is not None:
        allowed = ["run", *GROUP_KEYS]
        raise fail(ConfigError([unknown_name("peftbench status", "--by", "key", bad, allowed)]))
    return keys


@app.command()
def resubmit(
    sweep_file: SweepFile,
    cluster: Cluster = "local",
    runs_dir: RunsDir = None,
    profiles: Profiles = None,
    force: Force = False,
) -> None:
    """Run again exactly the runs with no success result that are not pending or running."""
    plan = _plan(sweep_file, cluster, runs_dir, profiles, force=force)
    with _one_writer(plan, "resubmit"):
        if plan.profile.launcher == "local":
            from peftbench.launch.resubmission import local_reruns

            _run_locally(plan, local_reruns(plan))
        else:
            _submit(plan, _status_command(sweep_file, cluster, runs_dir, profiles))


SWEEP_LOCK_WAIT_S = 60.0  # a second `sweep`/`resubmit` waits this long for the first, then refuses


def _one_writer(plan: SweepPlan, verb: str) -> Claim:
    """The sweep folder's lock (`<sweep folder>/.lock`): one `sweep` or `resubmit` at a time."""
    from peftbench.launch.claims import SWEEP_LOCK, Claim, ClaimHeld

    lock = Claim(plan.sweep_dir / SWEEP_LOCK, f"peftbench {verb} {plan.spec.name}", wait_s=SWEEP_LOCK_WAIT_S)
    try:
        lock.acquire()
    except ClaimHeld as err:
        said = f"{err}; nothing was submitted. Run again once it has finished."
        views.print_problem("Another command is writing this sweep", said)
        raise typer.Exit(code=1) from None
    for line in lock.broken:
        err_console.print(f"[yellow]{line}[/yellow]", highlight=False)
    return lock


def _print_plan(plan: SweepPlan) -> None:
    from peftbench.core.paths import RunPaths
    from peftbench.core.results import has_final_result

    ids = [r.run_id for r in plan.runs]  # each a hash of the spec: made once here
    done = [has_final_result(RunPaths(plan.sweep_dir / i)) for i in ids]
    cost = plan.cost()
    rows = zip(plan.runs, ids, done, cost.rows, strict=True)
    plan_views.print_plan(plan, [plan_views.PlanRow(*run) for run in rows])
    plan_views.print_cost(cost)


def _run_locally(plan: SweepPlan, runs: list[RunSpec]) -> None:
    from peftbench.launch.local import run_local

    summary = run_local(runs, plan.runs_dir, console)
    if summary.stopped is not None:  # Ctrl-C or SIGTERM: one line, the shell's exit code for it
        err_console.print(summary.stop_message(plan.sweep_dir), markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(code=128 + summary.stopped.signum)
    _print_collection([plan.sweep_dir])
    if summary.failed:
        err_console.print(
            f"[red]{len(summary.failed)} run(s) did not succeed:[/red] {', '.join(summary.failed)}"
            f" — see result.json and log.txt in {plan.sweep_dir}/<run_id>/"
        )
        raise typer.Exit(code=1)


def _status_command(sweep_file: Path, cluster: str, runs_dir: Path | None, profiles: Path | None) -> str:
    """`peftbench status` with the arguments that found this plan, to run as printed from here."""
    extra = [
        *(["--runs-dir", str(runs_dir)] if runs_dir else []),
        *(["--profiles", str(profiles)] if profiles else []),
    ]
    return shlex.join(["peftbench", "status", str(sweep_file), "--cluster", cluster, *extra])


def _submit(plan: SweepPlan, follow: str) -> None:
    """Submit what needs it (launch.resubmission says what); never waits for the jobs."""
    from peftbench.core.errors import SchedulerError
    from peftbench.launch.resubmission import resubmission
    from peftbench.launch.slurm import cancel_jobs, submit_runs
    from peftbench.launch.slurm_state import SchedulerUnavailable

    todo = resubmission(plan)
    if todo.refused:
        raise _scheduler_down(todo.refused)
    if not todo.submit:
        console.print(f"Nothing to submit: all {todo.runs} runs are done, pending or running.")
        return
    cancel_jobs(todo.cancel)
    try:
        submissions = submit_runs(plan, todo.submit)
    except SchedulerUnavailable as err:
        raise _scheduler_down(str(err)) from None
    except SchedulerError as err:
        err_console.print(Text("Not submitted", style="red") + Text(f" — {err}"), highlight=False)
        raise typer.Exit(code=1) from None
    for sub in submissions:
        first = sub.job_ids[0].split("_")[0]
        packed = f" in {len(sub.packs)} packed task(s)" if sub.packs else ""
        console.print(f"Submitted job {first}: {sub.run_count} run(s){packed}, {sub.shape}")
    console.print(
        f"{len(todo.submit)} run(s) submitted in {len(submissions)} array(s); {todo.left_alone} already "
        f"done, pending or running. Follow with: {follow}"
    )


def _scheduler_down(why: str) -> typer.Exit:
    err_console.print(
        f"[red]Nothing submitted[/red] — {why}. Runs may still be pending or running; "
        "run again when squeue and sacct answer (`peftbench status` shows which runs are unknown).",
        highlight=False,
    )
    return typer.Exit(code=1)


app.add_typer(clusters_app, name="clusters")


@app.command()
def sync(
    sweep: Annotated[Path, typer.Argument(help="A sweep folder: runs/<sweep>.")],
    dry_run: Annotated[bool, typer.Option(help="Say what would be uploaded; upload nothing.")] = False,
) -> None:
    """Upload the sweep's offline W&B runs not uploaded yet (on a login node with network)."""
    from peftbench.tools.tracker_sync import SyncFailed, sync_sweep

    with one_line(SyncFailed, code=1):
        views.print_sync(sync_sweep(sweep, dry_run))


@app.command("run-one")
def run_one_command(
    spec_file: Annotated[Path, typer.Argument(help="A run's spec.json.")],
    out_dir: Annotated[Path, typer.Argument(help="The run folder to write result.json into.")],
) -> None:
    """Train and evaluate one run (what each launcher task executes)."""
    from peftbench.run.plain_text import plain_text_output

    plain_text_output()  # log.txt gets no colour codes; before transformers is imported
    from peftbench.core.results import FINAL_STATUSES, UnreadableSpec, read_spec

    with one_line(UnreadableSpec, code=2):
        spec = read_spec(spec_file)
    from peftbench.run.one import run_one

    result = run_one(spec, out_dir)
    if result.status not in FINAL_STATUSES:  # halted (successive halving) is no failure
        views.print_plain(result.error or result.status, stderr=True)
        raise typer.Exit(code=1)


@app.command()
def collect(
    sweeps: SweepDirs, runs_dir: YamlRunsDir = Path("runs"), out: OutDir = None, judge_file: JudgeFile = None
) -> None:
    """Merge result.json files into results.parquet/.csv and print the paper-style table."""
    _print_collection(_sweep_folders(sweeps, runs_dir), out, judge_file)


def _sweep_folders(sweeps: list[Path], runs_dir: Path) -> list[Path]:
    """Sweep folders from folder or sweep-YAML arguments; exit 2 naming any that does not exist."""
    folders = [runs_dir / s.stem if s.suffix in {".yaml", ".yml"} else s for s in sweeps]
    missing = [str(f) for f in folders if not f.is_dir()]
    if missing:
        err_console.print(f"[red]No sweep folder:[/red] {', '.join(missing)}")
        raise typer.Exit(code=2)
    return folders


def _print_collection(folders: list[Path], out: Path | None = None, judge_file: Path | None = None) -> None:
    from peftbench.collect.outputs import write_collection
    from peftbench.core.judging import read_judge_file
    from peftbench.launch.slurm_state import states_of_run_folders

    with config_checked():
        judge = read_judge_file(judge_file) if judge_file else None
    report = write_collection(folders, out or folders[0], judge=judge)
    unfinished = states_of_run_folders([Path(d) for d in report.unfinished]) if report.unfinished else {}
    views.print_collection(report, unfinished)


@app.command()
def judge(
    sweep_dir: SweepFolder, judge_file: JudgeFile = None, url: JudgeUrl = None, model: JudgeModel = None
) -> None:
    """Score every saved answer its judge has not scored yet (resumable); exit 1 while some are left."""
    from peftbench.tasks.judging_step import judge_choice, judge_sweep

    with config_checked():
        report = judge_sweep(sweep_dir, judge_choice(judge_file, url, model))
    views.print_judging(report)
    if not report.complete:
        raise typer.Exit(code=1)


@app.command()
def report(
    sweeps: SweepDirs,
    runs_dir: YamlRunsDir = Path("runs"),
    out: OutDir = None,
    interval: Annotated[str, typer.Option(help="Interval over seeds: t (Student) or bootstrap.")] = "t",
    submission: Annotated[
        list[str] | None,
        typer.Option(help="Also write a leaderboard's files: hulu, slobench-superglue, slobench-si-nli."),
    ] = None,
    task: Annotated[
        list[str] | None, typer.Option(help="Our task name = the leaderboard's, e.g. my_cola=cola.")
    ] = None,
    published: Annotated[
        list[Path] | None,
        typer.Option(help="A study's published figures (YAML, docs/results.md) beside the shipped ones."),
    ] = None,
) -> None:
    """Write report.html (tables, plots, provenance, runs left out), tables (md/tex/csv), plots (png/svg)."""
    from peftbench.collect.report import NoResults, check_report_options, write_report

    folders = _sweep_folders(sweeps, runs_dir)
    leaderboards, extra = tuple(submission or ()), tuple(published or ())
    with config_checked(), one_line(NoResults, code=1):
        task_map = check_report_options(interval, list(leaderboards), task or [])
        outcome = write_report(folders, out or folders[0], interval, 0.95, leaderboards, task_map, extra)  # type: ignore[arg-type]
    views.print_plain(outcome.summary())
    for problem in outcome.problems:
        views.print_plain(f"  - {problem}", stderr=True)


@app.command()
def doctor(
    sweep_file: Annotated[
        Path | None,
        typer.Option("--sweep", help="Also check that this sweep's hub models and data are cached."),
    ] = None,
    cluster: Annotated[
        str | None,
        typer.Option(help="Also check this profile's image and run folder (a name or a YAML path)."),
    ] = None,
    runs_dir: RunsDir = None,
    require_gpu: Annotated[bool, typer.Option("--require-gpu", help="No CUDA GPU is a failure.")] = False,
) -> None:
    """Check this environment, inside or outside the image: lock, GPU, DeepSpeed, HF cache, run folder."""
    from peftbench.tools.doctor import DoctorOptions, print_report, run_doctor

    with config_checked():
        options = DoctorOptions.named(sweep_file, cluster, runs_dir, require_gpu)
    if print_report(run_doctor(options), console):
        raise typer.Exit(code=1)


@app.command()
def fetch(
    sweep_file: SweepFile,
    check: Annotated[
        bool, typer.Option("--check", help="Only list what is missing; download nothing.")
    ] = False,
) -> None:
    """Download every hub model, tokenizer and dataset a sweep needs into the HF cache, for offline
    runs, and the study files it reads from a public GitHub repository (BELLE's evaluation set)."""
    from peftbench.plan.loading import load_sweep
    from peftbench.tools.fetch import fetch_sweep

    with config_checked():
        runs = load_sweep(sweep_file).runs
    outcome = fetch_sweep(runs, str(sweep_file), check, report=console.print)
    for problem in outcome.problems:
        views.print_plain(problem, stderr=True, soft_wrap=True)
    if outcome.summary is not None:
        console.print(outcome.summary)
    if outcome.problems:
        raise typer.Exit(code=1)


if __name__ == "__main__":
    app()
