"""The `peftbench` command: each verb parses, validates and calls; no logic of its own."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
import typer.core
from rich.console import Console
from rich.table import Table
from rich.text import Text

from peftbench.core.errors import ConfigError
from peftbench.core.spec import RunSpec
from peftbench.plan.sweep_plan import SweepPlan, load_plan

app = typer.Typer(
    no_args_is_help=True,
    add_completion=False,
    help="Compare full fine-tuning, LoRA, BitFit and prompt tuning: sweeps, runs, status, tables.",
)
console = Console()
err_console = Console(stderr=True)


def _no_value_type_for_flags() -> None:
    """typer prints a value type after every option, `--dry-run <bool>` too; a flag takes no value."""
    shown = typer.core.TyperOption.display_type_rich
    typer.core.TyperOption.display_type_rich = lambda self, ctx: None if self.is_flag else shown(self, ctx)


_no_value_type_for_flags()

SweepFile = Annotated[Path, typer.Argument(help="A sweep YAML, e.g. configs/sweeps/demo.yaml.")]
Cluster = Annotated[str, typer.Option(help="Cluster profile: a name in configs/clusters/ or a YAML path.")]
RunsDir = Annotated[Path | None, typer.Option(help="Where run folders go (default: the profile's runs_dir).")]


def _fail(err: ConfigError) -> typer.Exit:
    err_console.print(Text("Invalid configuration", style="red") + Text(f" — {err}"), highlight=False)
    return typer.Exit(code=2)


def _plan(sweep_file: Path, cluster: str, runs_dir: Path | None) -> SweepPlan:
    try:
        return load_plan(sweep_file, cluster, runs_dir)
    except ConfigError as err:
        raise _fail(err) from None


@app.command()
def sweep(
    sweep_file: SweepFile,
    cluster: Cluster = "local",
    runs_dir: RunsDir = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the plan; run nothing.")] = False,
) -> None:
    """Validate a sweep, then run (local) or submit (Slurm) every run without a success result."""
    plan = _plan(sweep_file, cluster, runs_dir)
    if dry_run:
        _print_plan(plan)
    elif plan.profile.launcher == "local":
        _run_locally(plan, plan.runs)
    else:
        _submit(plan)


@app.command("plan")
def plan_command(sweep_file: SweepFile, cluster: Cluster = "local", runs_dir: RunsDir = None) -> None:
    """Estimate each run's GPU memory (weights, training state, activations); flag what cannot fit."""
    from peftbench.plan.memory import GB
    from peftbench.plan.sweep_plan import memory_rows

    try:
        plan = load_plan(sweep_file, cluster, runs_dir, check_memory=False)
    except ConfigError as err:
        raise _fail(err) from None
    table = Table(title=f"{plan.spec.name}: GPU memory per GPU, estimated ('{plan.profile.name}')")
    for column in (
        "run_id",
        "model",
        "task",
        "method",
        "engine",
        "GPUs",
        "weights",
        "state",
        "activ.",
        "total",
    ):
        table.add_column(
            column, justify="right" if column in ("GPUs", "weights", "state", "activ.", "total") else "left"
        )
    table.add_column("fits")
    refused = 0
    for row in memory_rows(plan.runs, plan.profile):
        r, e, fit = row.run, row.estimate, row.fit
        if e is None:
            table.add_row(
                r.run_id,
                r.model.name,
                r.task.name,
                r.label,
                "",
                "",
                "",
                "",
                "",
                "?",
                "config not here: peftbench fetch",
            )
            continue
        verdict = "" if fit is None else ("[green]yes[/]" if fit.fits else f"[red]no[/]: {fit.suggestion}")
        refused += fit is not None and not fit.fits
        gb = [f"{v / GB:.1f}" for v in (e.weights, e.training_state, e.activations, e.total)]
        table.add_row(r.run_id, r.model.name, r.task.name, r.label, e.backend, str(e.gpus), *gb, verdict)
    console.print(table)
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
) -> None:
    """Where each run stands: done, failed (why), interrupted, killed, pending, running, lost, unsubmitted."""
    from peftbench.launch.slurm_state import count_by, sweep_status

    plan = _plan(sweep_file, cluster, runs_dir)
    states = sweep_status(plan.runs, plan.runs_dir)
    if by == "run":
        table = Table(title=f"{plan.spec.name}: {len(states)} runs")
        for column in ("run_id", "model", "task", "method", "seed", "state", "slurm", "job", "detail"):
            table.add_column(column, overflow="fold")
        for s in states:
            r = s.run
            table.add_row(
                r.run_id,
                r.model.name,
                r.task.name,
                r.label,
                str(r.seed),
                _styled(s.state),
                s.slurm_state,
                s.job_id,
                s.detail,
            )
    else:
        keys = [{"method": "label"}.get(k.strip(), k.strip()) for k in by.split(",")]
        counts = count_by(states, *keys)
        names = ["done", "running", "pending", "failed", "interrupted", "killed", "lost", "unsubmitted"]
        table = Table(title=f"{plan.spec.name}: {len(states)} runs by {by}")
        for column in [*by.split(","), *names]:
            table.add_column(column)
        for group, n in counts.items():
            table.add_row(*map(str, group), *(str(n.get(k, 0) or "") for k in names))
    console.print(table)
    totals = {k: sum(1 for s in states if s.state == k) for k in dict.fromkeys(s.state for s in states)}
    console.print(", ".join(f"{n} {k}" for k, n in totals.items()))


@app.command()
def resubmit(sweep_file: SweepFile, cluster: Cluster = "local", runs_dir: RunsDir = None) -> None:
    """Run again exactly the runs with no success result that are not pending or running."""
    plan = _plan(sweep_file, cluster, runs_dir)
    if plan.profile.launcher == "local":
        from peftbench.launch.slurm_state import sweep_status

        _run_locally(plan, [s.run for s in sweep_status(plan.runs, plan.runs_dir) if s.needs_submission])
    else:
        _submit(plan)


def _styled(state: str) -> str:
    colour = {"done": "green", "failed": "red", "lost": "red", "killed": "red", "running": "cyan"}
    colour |= {"pending": "yellow", "interrupted": "yellow"}
    return f"[{colour[state]}]{state}[/]" if state in colour else state


def _print_plan(plan: SweepPlan) -> None:
    from peftbench.core.paths import RunPaths
    from peftbench.core.results import has_success

    table = Table(title=f"{plan.spec.name}: {len(plan.runs)} runs on '{plan.profile.name}'")
    for column in ("run_id", "model", "task", "method", "params", "lr", "seed", "done"):
        table.add_column(column)
    for r in plan.runs:
        done = "✓" if has_success(RunPaths.of(plan.runs_dir, r)) else ""
        params = " ".join(f"{k}={v}" for k, v in r.params.items() if v is not None)
        table.add_row(
            r.run_id,
            r.model.name,
            r.task.name,
            r.label,
            params,
            f"{r.training.learning_rate:g}",
            str(r.seed),
            done,
        )
    console.print(table)


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


def _submit(plan: SweepPlan) -> None:
    """Submit what needs it (no success, nothing queued or running); never waits for the jobs."""
    from peftbench.launch.slurm import submit_runs
    from peftbench.launch.slurm_state import sweep_status

    states = sweep_status(plan.runs, plan.runs_dir)
    todo = [s.run for s in states if s.needs_submission]
    skipped = len(states) - len(todo)
    if not todo:
        console.print(f"Nothing to submit: all {len(states)} runs are done, pending or running.")
        return
    submissions = submit_runs(todo, plan.profile, plan.runs_dir)
    for sub in submissions:
        first = next(iter(sub.tasks)).split("_")[0]
        console.print(f"Submitted job {first}: {len(sub.tasks)} run(s), {sub.shape}")
    console.print(
        f"{len(todo)} run(s) submitted in {len(submissions)} array(s); {skipped} already done, "
        f"pending or running. Follow with: peftbench status {plan.spec.name}"
    )


@app.command("run-one")
def run_one_command(
    spec_file: Annotated[Path, typer.Argument(help="A run's spec.json.")],
    out_dir: Annotated[Path, typer.Argument(help="The run folder to write result.json into.")],
) -> None:
    """Train and evaluate one run (what each launcher task executes)."""
    from peftbench.run.plain_text import plain_text_output

    plain_text_output()  # log.txt gets no colour codes; before transformers is imported
    from peftbench.core.results import read_spec
    from peftbench.run.one import run_one

    result = run_one(read_spec(spec_file), out_dir)
    if result.status != "success":
        err_console.print(result.error or result.status, markup=False, highlight=False)
        raise typer.Exit(code=1)


@app.command()
def collect(
    sweeps: Annotated[list[Path], typer.Argument(help="Sweep folders (runs/<name>) or sweep YAML files.")],
    runs_dir: Annotated[Path, typer.Option(help="Where run folders are, for sweep YAML arguments.")] = Path(
        "runs"
    ),
    out: Annotated[Path | None, typer.Option(help="Output folder (default: the first sweep folder).")] = None,
) -> None:
    """Merge result.json files into results.parquet/.csv and print the paper-style table."""
    folders = _sweep_folders(sweeps, runs_dir)
    _print_collection(folders, out)


def _sweep_folders(sweeps: list[Path], runs_dir: Path) -> list[Path]:
    """Sweep folders from folder or sweep-YAML arguments; exit 2 naming any that does not exist."""
    folders = [runs_dir / s.stem if s.suffix in {".yaml", ".yml"} else s for s in sweeps]
    missing = [str(f) for f in folders if not f.is_dir()]
    if missing:
        err_console.print(f"[red]No sweep folder:[/red] {', '.join(missing)}")
        raise typer.Exit(code=2)
    return folders


def _print_collection(folders: list[Path], out: Path | None = None) -> None:
    from peftbench.collect.merge import write_collection

    report = write_collection(folders, out or folders[0])
    console.print(report.table, markup=False, highlight=False, soft_wrap=True)
    console.print(f"{report.counts()}; written: {', '.join(str(p) for p in report.outputs)}")
    if report.unreadable:
        err_console.print(
            f"[yellow]{len(report.unreadable)} result file(s) could not be read and were left out:[/yellow]"
        )
        for line in report.unreadable:
            err_console.print(f"  - {line}", markup=False, highlight=False)


@app.command()
def report(
    sweeps: Annotated[list[Path], typer.Argument(help="Sweep folders (runs/<name>) or sweep YAML files.")],
    runs_dir: Annotated[Path, typer.Option(help="Where run folders are, for sweep YAML arguments.")] = Path(
        "runs"
    ),
    out: Annotated[Path | None, typer.Option(help="Output folder (default: the first sweep folder).")] = None,
    interval: Annotated[str, typer.Option(help="Interval over seeds: t (Student) or bootstrap.")] = "t",
    submission: Annotated[
        list[str] | None,
        typer.Option(help="Also write a leaderboard's files: hulu, slobench-superglue, slobench-si-nli."),
    ] = None,
    task: Annotated[
        list[str] | None, typer.Option(help="Our task name = the leaderboard's, e.g. my_cola=cola.")
    ] = None,
) -> None:
    """Write report.html (tables, plots, provenance, runs left out), tables (md/tex/csv), plots (png/svg)."""
    from peftbench.collect.report import check_report_options, write_report

    folders = _sweep_folders(sweeps, runs_dir)
    try:
        task_map = check_report_options(interval, submission or [], task or [])
    except ConfigError as err:
        raise _fail(err) from None
    leaderboards = tuple(submission or ())
    outcome = write_report(folders, out or folders[0], interval, 0.95, leaderboards, task_map)  # type: ignore[arg-type]
    console.print(outcome.summary(), markup=False, highlight=False)
    for problem in outcome.problems:
        err_console.print(f"  - {problem}", markup=False, highlight=False)


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
    from peftbench.plan.loading import load_cluster, load_sweep
    from peftbench.tools.doctor import DoctorOptions, print_report, run_doctor

    try:
        profile = load_cluster(cluster) if cluster else None
        runs = load_sweep(sweep_file).runs if sweep_file else None
    except ConfigError as err:
        raise _fail(err) from None
    default_runs_dir = Path(profile.runs_dir if profile else "runs")
    options = DoctorOptions(runs_dir or default_runs_dir, runs, profile, require_gpu)
    if print_report(run_doctor(options), console):
        raise typer.Exit(code=1)


@app.command()
def fetch(
    sweep_file: SweepFile,
    check: Annotated[
        bool, typer.Option("--check", help="Only list what is missing; download nothing.")
    ] = False,
) -> None:
    """Download every hub model, tokenizer and dataset a sweep needs into the HF cache, for offline runs."""
    from peftbench.plan.loading import load_sweep
    from peftbench.tools import fetch as hub

    try:
        runs = load_sweep(sweep_file).runs
    except ConfigError as err:
        raise _fail(err) from None
    items, by_hand = hub.hub_needs(runs), hub.missing_local_data(runs)
    for need in by_hand:  # not on the hub: fetch cannot get them, the user must
        err_console.print(str(need), markup=False, highlight=False, soft_wrap=True)
    try:
        fetched = [] if check else hub.fetch(items, report=console.print)
        hub.require_cached(items)
    except hub.FetchError as err:
        err_console.print(str(err), markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(code=1) from None
    console.print(f"{len(items)} hub item(s) needed, {len(fetched)} fetched now; all in {hub.hf_home()}.")
    if by_hand:
        raise typer.Exit(code=1)


if __name__ == "__main__":
    app()
