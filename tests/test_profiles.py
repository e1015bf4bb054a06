"""Cluster profiles from any folder: --profiles, $PEFTBENCH_CLUSTERS, ./configs/clusters, the user's
config folder, then the packaged ones; `peftbench clusters` lists them; a wheel install has them."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from peftbench.core.errors import ConfigError
from peftbench.plan.loading import load_cluster
from peftbench.plan.profiles import PACKAGED, list_profiles
from tests.conftest import DEMO, REPO

SHIPPED = {"local", "dev", "dev2", "arnes", "vega", "komondor"}


@pytest.fixture
def elsewhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A folder outside the checkout, with no user profiles and no $PEFTBENCH_CLUSTERS."""
    folder = tmp_path / "lab"
    folder.mkdir()
    monkeypatch.chdir(folder)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv("PEFTBENCH_CLUSTERS", raising=False)
    return folder


def own_profile(folder: Path, name: str, description: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump({"launcher": "local", "description": description}))
    return path


def test_the_shipped_profiles_are_package_data_found_from_any_folder(elsewhere: Path):
    assert {p.name for p in list_profiles()} == SHIPPED
    assert all(p.origin == "packaged" for p in list_profiles())
    profile = load_cluster("vega")
    assert profile.slurm is not None and profile.slurm.default_gpu_type == "a100"
    assert Path(profile.file) == PACKAGED / "vega.yaml"


def test_a_labs_own_profiles_win_in_the_documented_order(elsewhere: Path, tmp_path: Path, monkeypatch):
    own_profile(tmp_path / "xdg" / "peftbench" / "clusters", "local", "user")
    assert load_cluster("local").description == "user"
    own_profile(elsewhere / "configs" / "clusters", "local", "project")
    assert load_cluster("local").description == "project"
    monkeypatch.setenv("PEFTBENCH_CLUSTERS", f"{tmp_path / 'none'}{os.pathsep}{tmp_path / 'env'}")
    own_profile(tmp_path / "env", "local", "env")
    assert load_cluster("local").description == "env"
    own_profile(tmp_path / "flag", "local", "flag")
    assert load_cluster("local", tmp_path / "flag").description == "flag"
    [local] = [p for p in list_profiles(tmp_path / "flag") if p.name == "local"]
    assert local.origin == "--profiles"
    assert local.shadows == ("$PEFTBENCH_CLUSTERS", "project", "user", "packaged")


def test_an_unknown_profile_names_every_folder_searched_and_a_near_match(elsewhere: Path):
    with pytest.raises(ConfigError) as info:
        load_cluster("vegaa")
    message = str(info.value)
    assert "No profile for cluster 'vegaa'" in message and "Did you mean 'vega'?" in message
    assert "configs/clusters (project)" in message and f"{PACKAGED} (packaged)" in message


def cli(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "peftbench", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**os.environ, **(env or {})},
        timeout=600,
    )


def test_clusters_lists_each_profile_with_where_it_came_from_and_show_prints_one(tmp_path: Path):
    lab = tmp_path / "lab"
    own_profile(lab / "configs" / "clusters", "vega", "our vega")
    env = {"XDG_CONFIG_HOME": str(tmp_path / "xdg"), "PEFTBENCH_CLUSTERS": ""}
    out = cli("clusters", cwd=lab, env=env)
    assert out.returncode == 0, out.stderr
    table = [[c.strip() for c in line.split("│")[1:-1]] for line in out.stdout.splitlines()]
    rows = {cells[0]: cells for cells in table if cells}
    assert rows["vega"][1] == "project" and rows["vega"][3] == "packaged"  # from, and what it hides
    assert rows["arnes"][1] == "packaged" and rows["local"][1] == "packaged"
    shown = cli("clusters", "show", "arnes", cwd=lab, env=env)
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout == (PACKAGED / "arnes.yaml").read_text()
    missing = cli("clusters", "show", "nope", cwd=lab, env=env)
    assert missing.returncode == 2 and "No profile for cluster 'nope'" in missing.stderr
    assert "Traceback" not in missing.stderr


@pytest.mark.slow
def test_a_wheel_install_plans_the_demo_from_a_folder_outside_the_checkout(tmp_path: Path):
    """The image's kind of install: a built wheel, not editable, run from a lab's own folder."""
    wheels, target, lab, source = (tmp_path / n for n in ("wheels", "site", "lab", "source"))
    lab.mkdir()
    shutil.copytree(REPO / "src", source / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    for name in ("pyproject.toml", "README.md"):  # a copy: building writes build/ next to the sources
        shutil.copy(REPO / name, source / name)
    build = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w"]
    subprocess.run([*build, str(wheels), str(source)], check=True, capture_output=True, timeout=600)
    [wheel] = wheels.glob("peftbench-*.whl")
    install = [sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target)]
    subprocess.run([*install, str(wheel)], check=True, capture_output=True, timeout=600)
    (lab / "demo.yaml").write_text(DEMO.read_text())
    env = {"PYTHONPATH": str(target), "XDG_CONFIG_HOME": str(tmp_path / "xdg"), "PEFTBENCH_CLUSTERS": ""}
    where = subprocess.run(
        [sys.executable, "-c", "import peftbench; print(peftbench.__file__)"],
        capture_output=True,
        text=True,
        cwd=lab,
        env={**os.environ, **env},
    )
    assert where.stdout.startswith(str(target)), where  # the wheel, not the checkout's editable install
    out = cli("sweep", "demo.yaml", "--cluster", "local", "--dry-run", cwd=lab, env=env)
    assert out.returncode == 0, out.stderr
    assert "demo: 8 runs on 'local'" in out.stdout
    gpu = {"name": "gpu", "models": ["xlm-roberta-base"], "tasks": ["movie_sentiment"]}
    (lab / "gpu.yaml").write_text(yaml.safe_dump({**gpu, "methods": {"lora": {"resources": {"gpus": 1}}}}))
    planned = cli(
        "plan", "gpu.yaml", "--cluster", "vega", cwd=lab, env={**env, "HF_HOME": str(tmp_path / "hf")}
    )
    assert planned.returncode == 0, planned.stderr  # the model's shape from the wheel's shapes.json
    assert "xlm-roberta-base" in planned.stdout and "config not here" not in planned.stdout
    listed = cli("clusters", cwd=lab, env=env)
    assert listed.returncode == 0 and "packaged" in listed.stdout
    assert str(target / "peftbench" / "plan" / "clusters") in listed.stdout.replace("\n", "")


def test_a_packaged_profile_is_made_a_labs_own_by_copying_it_never_over_an_existing_copy(elsewhere: Path):
    from peftbench.plan.profiles import copy_profile
    from peftbench.plan.resources import unset_site_facts

    [hint, *_] = unset_site_facts(load_cluster("arnes"))
    assert "`peftbench clusters copy arnes` writes configs/clusters/arnes.yaml" in hint.message
    target = copy_profile("arnes")
    assert (
        target == Path("configs/clusters/arnes.yaml")
        and target.read_text() == (PACKAGED / "arnes.yaml").read_text()
    )
    target.write_text(target.read_text().replace("FILL_ME/", "/shared/").replace("FILL_ME", "h100"))
    profile = load_cluster("arnes")
    assert Path(profile.file) == target and not unset_site_facts(profile)
    with pytest.raises(ConfigError, match="Already exists"):
        copy_profile("arnes")
    with pytest.raises(ConfigError, match="no path separators"):
        copy_profile("../../arnes")
    assert "h100" in target.read_text()
