"""`peftbench clusters`: the cluster profiles found from here, one printed, one copied to fill in."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from peftbench import views
from peftbench.options import Profiles, config_checked
from peftbench.views import console

clusters_app = typer.Typer(help="The cluster profiles found from here, and where each came from.")


@clusters_app.callback(invoke_without_command=True)
def clusters(ctx: typer.Context, profiles: Profiles = None) -> None:
    """List the profiles found (first folder wins), each with its file and what it hides."""
    from peftbench.plan.profiles import list_profiles, searched

    if ctx.invoked_subcommand is not None:
        return
    views.print_profiles(list_profiles(profiles), searched(profiles))


@clusters_app.command("show")
def clusters_show(
    name: Annotated[str, typer.Argument(help="A profile name.")], profiles: Profiles = None
) -> None:
    """Print one profile's file as it is (`peftbench clusters copy NAME` makes it your own)."""
    from peftbench.plan.loading import load_cluster

    with config_checked():
        profile = load_cluster(name, profiles)
    views.print_plain(f"# {profile.file}", stderr=True)
    print(Path(profile.file).read_text(encoding="utf-8"), end="")


@clusters_app.command("copy")
def clusters_copy(
    name: Annotated[str, typer.Argument(help="A profile name.")],
    to: Annotated[Path, typer.Option(help="The folder to copy into.")] = Path("configs/clusters"),
    profiles: Profiles = None,
) -> None:
    """Copy a profile into ./configs/clusters (found first from this folder) to fill in its FILL_ME facts."""
    from peftbench.plan.profiles import copy_profile

    with config_checked():
        target = copy_profile(name, profiles, to)
    console.print(f"Wrote {target}: set its FILL_ME values; `--cluster {name}` reads it from this folder.")
