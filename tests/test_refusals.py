"""Bad input from a lab's day one, each refused at once with one clear line naming the key, and
nothing left behind: unsafe sweep names, negative seeds, runaway grids, unknown --by keys, a
failing sbatch. (The corpus of bad sweeps these come from was kept outside the project.)"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from peftbench.core.errors import ConfigError
from peftbench.launch.slurm_state import STATES
from peftbench.plan.loading import load_cluster, load_sweep
from peftbench.plan.profiles import PACKAGED
from peftbench.plan.schema import MAX_RUNS
from tests.conftest import require_slurm
from tests.test_config import BASE, problems_of


@pytest.mark.parametrize(
    "name", ["../../somewhere", "", "a/b", "..", ".hidden", "-x", "with space", "x" * 101]
)
def test_a_sweep_name_that_is_not_a_safe_folder_name_is_refused(sweep_file, name: str):
    [message] = problems_of(sweep_file, {**BASE, "name": name})
    assert "sweep.yaml: name: A sweep name" in message and "letters, digits, '.', '_' or '-'" in message
    assert f"(got {name!r})" in message


@pytest.mark.parametrize("name", ["demo", "hulu-puli", "slobench_v1.2", "0"])
def test_safe_names_pass(sweep_file, name: str):
    assert load_sweep(sweep_file({**BASE, "name": name})).name == name


def test_a_file_stem_that_is_no_safe_name_is_refused_too(tmp_path: Path, sweep_file):
    data = {k: v for k, v in BASE.items() if k != "name"}
    with pytest.raises(ConfigError, match=r"my sweep.yaml: name: A sweep name .*\(got 'my sweep'\)"):
        load_sweep(sweep_file(data, name="my sweep.yaml"))


def test_negative_seeds_are_refused(sweep_file):
    [message] = problems_of(sweep_file, {**BASE, "seeds": [0, -3]})
    assert "seeds[1]: Input should be greater than or equal to 0 (got -3)" in message


def test_a_runaway_grid_is_refused_at_once_with_its_count_and_the_cap(sweep_file):
    grid = {"r": list(range(1, 101)), "lora_alpha": list(range(1, 101)), "learning_rate": [1e-4] * 1000}
    started = time.perf_counter()
    [message] = problems_of(sweep_file, {**BASE, "methods": {"lora": grid}})  # 10^7 points
    assert time.perf_counter() - started < 5  # counted, never expanded (expanding takes minutes)
    assert f"expands to 10000000 runs (methods.lora: 10000000), over the cap of {MAX_RUNS}" in message
    assert "sweep.yaml: max_runs:" in message and "max_runs: 10000000" in message


def test_the_cap_is_raised_explicitly_in_the_sweep(sweep_file):
    grid = {"learning_rate": [1e-4 * i for i in range(1, 31)]}
    data = {**BASE, "methods": {"lora": grid}, "seeds": [0, 1, 2]}
    assert "over the cap of 50" in problems_of(sweep_file, {**data, "max_runs": 50})[0]
    assert len(load_sweep(sweep_file({**data, "max_runs": 90})).runs) == 90


def cli(*args: str, cwd: Path, path_first: Path | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "XDG_CONFIG_HOME": str(cwd / "xdg")}
    if path_first is not None:
        env["PATH"] = f"{path_first}{os.pathsep}{env['PATH']}"
    return subprocess.run(
        [sys.executable, "-m", "peftbench", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=600,
    )


def test_status_by_an_unknown_key_names_the_allowed_ones(sweep_file, tmp_path: Path):
    out = cli("status", str(sweep_file(BASE)), "--by", "method,foo", cwd=tmp_path)
    assert out.returncode == 2
    assert "peftbench status: --by: Unknown key 'foo'. Allowed: method, model, run, seed, task." in out.stderr
    assert "Traceback" not in out.stderr and len(out.stderr.strip().splitlines()) == 2
    assert not (tmp_path / "runs").exists()


def test_status_by_model_and_seed_counts_each(sweep_file, tmp_path: Path):
    out = cli("status", str(sweep_file({**BASE, "seeds": [0, 1]})), "--by", "model,seed", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    rows = [
        [c.strip() for c in line.split("│")[1:-1]] for line in out.stdout.splitlines() if "minilm" in line
    ]
    unsubmitted = ["1" if state == "unsubmitted" else "" for state in STATES]
    assert rows == [["minilm-l6", "0", *unsubmitted], ["minilm-l6", "1", *unsubmitted]]


def failing_sbatch(folder: Path) -> Path:
    """A stand-in `sbatch` first on PATH, answering as sbatch does when the controller is down (the
    fault cannot be caused on the shared localhost cluster without stopping it for everyone)."""
    folder.mkdir()
    script = folder / "sbatch"
    script.write_text(
        "#!/bin/sh\n"
        "echo 'sbatch: error: Batch job submission failed: Unable to contact slurm controller "
        "(connect failure)' >&2\nexit 1\n"
    )
    script.chmod(0o755)
    (folder / "srun").write_text("#!/bin/sh\nexit 0\n")  # submitit only asks that one is on PATH
    (folder / "srun").chmod(0o755)
    return folder


def test_a_failed_sbatch_is_one_line_naming_it_and_leaves_nothing_behind(sweep_file, tmp_path: Path):
    runs = tmp_path / "runs"
    sweep = sweep_file({**BASE, "name": "fd", "seeds": [0, 1]})
    out = cli(
        "sweep",
        str(sweep),
        "--cluster",
        "dev",
        "--runs-dir",
        str(runs),
        cwd=tmp_path,
        path_first=failing_sbatch(tmp_path / "bin"),
    )
    assert out.returncode == 1
    assert out.stderr.strip() == (
        "Not submitted — `sbatch` failed: sbatch: error: Batch job submission failed: "
        "Unable to contact slurm controller (connect failure)"
    )
    assert out.stdout == ""
    left = sorted(str(p.relative_to(runs)) for p in runs.rglob("*"))
    assert left == ["fd"], left  # no .slurm pickles or scripts, no run folders, no submission record


def test_messages_keep_whole_lines_when_output_is_not_a_terminal(sweep_file, tmp_path: Path):
    """CI logs and `make > file`: no hard wrap at 80 columns splitting a key or a path."""
    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
    sweep = sweep_file({**BASE, "name": "../../somewhere"})
    out = subprocess.run(
        [sys.executable, "-m", "peftbench", "sweep", str(sweep), "--dry-run"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=600,
    )
    assert out.returncode == 2
    [line] = [line for line in out.stderr.splitlines() if "name:" in line]
    assert line.startswith(f"  - {sweep}: name: A sweep name") and line.endswith("(got '../../somewhere').")
    assert len(line) > 120


@pytest.mark.slurm
def test_the_hint_after_a_submission_works_as_printed(sweep_file, tmp_path: Path):
    """Submitted held (the jobs never start), from a lab folder with its own profile folder."""
    require_slurm()
    held = yaml.safe_load((PACKAGED / "dev.yaml").read_text())
    held["slurm"]["additional_parameters"] = {"hold": True}
    (tmp_path / "ours").mkdir()
    (tmp_path / "ours" / "dev.yaml").write_text(yaml.safe_dump(held))
    sweep_file({**BASE, "name": "fd"}, name="fd.yaml")
    out = cli("sweep", "fd.yaml", "--cluster", "dev", "--profiles", "ours", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    jobs = re.findall(r"Submitted job (\d+)", out.stdout)
    try:
        hint = out.stdout.split("Follow with: ")[1].strip()
        assert hint == "peftbench status fd.yaml --cluster dev --profiles ours"
        command = shlex.split(hint)
        status = cli(*command[1:], cwd=tmp_path)
        assert status.returncode == 0, status.stderr
        assert "1 pending" in status.stdout
    finally:
        subprocess.run(["scancel", *jobs], check=False)


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("partition", "gpu\n#SBATCH --exclusive"),
        ("account", "my project"),
        ("qos", "-x"),
        ("modules", ["cuda 12"]),
    ],
)
def test_site_names_that_become_sbatch_options_are_one_word(tmp_path: Path, key: str, value):
    profile = yaml.safe_load((PACKAGED / "dev.yaml").read_text())
    profile["slurm"][key] = value
    path = tmp_path / "site.yaml"
    path.write_text(yaml.safe_dump(profile))
    with pytest.raises(ConfigError) as info:
        load_cluster(str(path))
    [problem] = info.value.problems
    assert problem.file == str(path) and problem.key.startswith(f"slurm.{key}")
    assert "A Slurm name is one word" in problem.message


def test_no_sbatch_at_all_is_one_line_too(sweep_file, tmp_path: Path):
    """A login node without Slurm on PATH (here: PATH holding only this Python's folder)."""
    runs = tmp_path / "runs"
    sweep = sweep_file({**BASE, "name": "fd"})
    env = {**os.environ, "PATH": str(Path(sys.executable).parent), "XDG_CONFIG_HOME": str(tmp_path / "x")}
    out = subprocess.run(
        [sys.executable, "-m", "peftbench", "sweep", str(sweep), "--cluster", "dev", "--runs-dir", str(runs)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=600,
    )
    assert out.returncode == 1
    assert (
        out.stderr.strip()
        == "Not submitted — `sbatch` failed: not found on PATH: is this a Slurm login node?"
    )
    assert sorted(p.name for p in runs.rglob("*")) == ["fd"]


@pytest.mark.parametrize(
    ("env", "says"),
    [({"MY VAR": "1"}, "is not a variable name"), ({"A": 'say "hi"'}, "would drop the closing quote")],
)
def test_container_env_that_cannot_become_an_env_flag_is_refused_with_the_profile(tmp_path: Path, env, says):
    profile = yaml.safe_load((PACKAGED / "dev.yaml").read_text())
    profile["container"] = {"image": "/shared/peftbench.sif", "env": env}
    path = tmp_path / "site.yaml"
    path.write_text(yaml.safe_dump(profile))
    with pytest.raises(ConfigError) as info:
        load_cluster(str(path))
    [problem] = info.value.problems
    assert problem.file == str(path) and problem.key == "container.env" and says in problem.message
