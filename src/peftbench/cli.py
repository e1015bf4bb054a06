"""The `peftbench` command: each verb parses, validates and calls; no logic of its own."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from peftbench.config import ClusterProfile, RunSpec, SweepSpec
from peftbench.errors import ConfigError

app = typer.Typer(no_args_is_help=True, add_completion=False, help=__doc__)
console = Console()
err_console = Console(stderr=True)

SweepFile = Annotated[Path, typer.Argument(help="A sweep YAML, e.g. configs/sweeps/demo.yaml.")]
Cluster = Annotated[str, typer.Option(help="Cluster profile: a name in configs/clusters/ or a YAML path.")]
RunsDir = Annotated[Path | None, typer.Option(help="Where run folders go (default: the profile's runs_dir).")]


def _fail(err: ConfigError) -> typer.Exit:
    err_console.print(f"[red]Invalid configuration[/red] — {err}", highlight=False, markup=False)
    return typer.Exit(code=2)


def _load(sweep_file: Path, cluster: str) -> tuple[ClusterProfile, SweepSpec, list[RunSpec]]:
    """Cluster and sweep are both checked before either error is shown: one message, every problem."""
    from peftbench.config import load_cluster
    from peftbench.sweep import expand_sweep, load_sweep

    problems, profile, spec = [], None, None
    try:
        profile = load_cluster(cluster)
    except ConfigError as err:
        problems += err.problems
    try:
        spec = load_sweep(sweep_file)
    except ConfigError as err:
        problems += err.problems
    if problems:
        raise _fail(ConfigError(problems))
    return profile, spec, expand_sweep(spec, file=str(sweep_file))


@app.command()
def sweep(
    sweep_file: SweepFile,
    cluster: Cluster = "local",
    runs_dir: RunsDir = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the plan; run nothing.")] = False,
) -> None:
    """Validate a sweep, then run every run that has no success result yet, and print the table."""
    from peftbench.launch.local import run_local
    from peftbench.results import RunPaths, has_success

    profile, spec, runs = _load(sweep_file, cluster)
    root = runs_dir or Path(profile.runs_dir)
    if dry_run:
        table = Table(title=f"{spec.name}: {len(runs)} runs on '{profile.name}'")
        for column in ("run_id", "model", "task", "method", "params", "lr", "seed", "done"):
            table.add_column(column)
        for r in runs:
            done = "✓" if has_success(RunPaths.of(root, r)) else ""
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
        return
    summary = run_local(runs, root, console)
    _print_collection([root / spec.name])
    if summary.failed:
        err_console.print(
            f"[red]{len(summary.failed)} run(s) did not succeed:[/red] {', '.join(summary.failed)}"
            f" — see result.json and log.txt in {root / spec.name}/<run_id>/"
        )
        raise typer.Exit(code=1)


@app.command("run-one")
def run_one_command(
    spec_file: Annotated[Path, typer.Argument(help="A run's spec.json.")],
    out_dir: Annotated[Path, typer.Argument(help="The run folder to write result.json into.")],
) -> None:
    """Train and evaluate one run (what each launcher task executes)."""
    from peftbench.results import read_spec
    from peftbench.run import run_one

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
    folders = [runs_dir / s.stem if s.suffix in {".yaml", ".yml"} else s for s in sweeps]
    missing = [str(f) for f in folders if not f.is_dir()]
    if missing:
        err_console.print(f"[red]No sweep folder:[/red] {', '.join(missing)}")
        raise typer.Exit(code=2)
    _print_collection(folders, out)


def _print_collection(folders: list[Path], out: Path | None = None) -> None:
    from peftbench.collect import write_collection

    report = write_collection(folders, out or folders[0])
    console.print(report.table, markup=False, highlight=False)
    console.print(
        f"{report.n_success} successful of {report.n_results} results; "
        f"written: {', '.join(str(p) for p in report.outputs)}"
    )
    if report.unreadable:
        err_console.print(
            f"[yellow]{len(report.unreadable)} result file(s) could not be read and were left out:[/yellow]"
        )
        for line in report.unreadable:
            err_console.print(f"  - {line}", markup=False, highlight=False)


if __name__ == "__main__":
    app()
