"""What every verb of the `peftbench` command shares: its arguments and options (typer types with
their help), the group that ends any verb on a full or read-only disk with one line, and the
contexts that turn a room's error into one line of stderr and an exit code (never a traceback)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
import typer.core

from peftbench import views
from peftbench.core.errors import ConfigError, PeftbenchError
from peftbench.core.files import disk_error


class Verbs(typer.core.TyperGroup):
    """The verbs: one that meets a full or read-only disk (core's CannotWrite, or a library's error
    saying so) ends with one line naming the file, its file system and what to free; exit 1."""

    def invoke(self, ctx: typer.Context) -> object:
        try:
            return super().invoke(ctx)
        except Exception as err:
            if (said := disk_error(err, Path.cwd())) is None:
                raise
            views.print_cannot_write(said)
            raise typer.Exit(code=1) from None


def _no_value_type_for_flags() -> None:
    """typer prints a value type after every option, `--dry-run <bool>` too; a flag takes no value."""
    shown = typer.core.TyperOption.display_type_rich
    typer.core.TyperOption.display_type_rich = lambda self, ctx: None if self.is_flag else shown(self, ctx)


_no_value_type_for_flags()

SweepFile = Annotated[Path, typer.Argument(help="A sweep YAML, e.g. configs/sweeps/demo.yaml.")]
Cluster = Annotated[
    str, typer.Option(help="Cluster profile: a name (`peftbench clusters` lists them) or a YAML path.")
]
Profiles = Annotated[
    Path | None,
    typer.Option(
        help="A folder of your own profiles, searched first (or set $PEFTBENCH_CLUSTERS).", show_default=False
    ),
]
Force = Annotated[
    bool, typer.Option("--force", help="Go on past the GPU-hour budget and the disk refusals.")
]
RunsDir = Annotated[Path | None, typer.Option(help="Where run folders go (default: the profile's runs_dir).")]
SweepDirs = Annotated[list[Path], typer.Argument(help="Sweep folders (runs/<name>) or sweep YAML files.")]
YamlRunsDir = Annotated[Path, typer.Option(help="Where run folders are, for sweep YAML arguments.")]
OutDir = Annotated[Path | None, typer.Option(help="Output folder (default: the first sweep folder).")]
SweepFolder = Annotated[Path, typer.Argument(help="A sweep folder: runs/<sweep>.")]
JudgeFile = Annotated[
    Path | None, typer.Option("--judge", help="Judge settings (YAML) instead of the sweep's own judge.")
]
JudgeUrl = Annotated[str | None, typer.Option("--url", help="The judge's server, e.g. http://node:8000/v1.")]
JudgeModel = Annotated[str | None, typer.Option("--model", help="The judge model's name on that server.")]


def fail(err: ConfigError) -> typer.Exit:
    views.print_problem("Invalid configuration", err)
    return typer.Exit(code=2)


@contextmanager
def config_checked() -> Iterator[None]:
    """A ConfigError ends the command: every problem on stderr, exit 2, no traceback."""
    try:
        yield
    except ConfigError as err:
        raise fail(err) from None


@contextmanager
def one_line(error: type[PeftbenchError], code: int) -> Iterator[None]:
    """`error` ends the command: its message (which names the file) on one line of stderr, no traceback."""
    try:
        yield
    except error as err:
        views.print_plain(err, stderr=True, soft_wrap=True)
        raise typer.Exit(code=code) from None
