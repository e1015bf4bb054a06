"""The Slurm launcher's pure parts: resource shapes, refusals before submission, the sbatch script,
the arrays a plan becomes (golden files), and their submission through a stand-in sbatch."""

from __future__ import annotations

import ast
import dataclasses
import json
import os
import stat
from pathlib import Path

import pytest

from peftbench.core.errors import ConfigError
from peftbench.launch.slurm import array_jobs, executor_parameters, submit_runs
from peftbench.launch.slurm_records import read_submissions
from peftbench.plan.loading import load_cluster, load_sweep
from peftbench.plan.placement import shape_of
from peftbench.plan.profiles import PACKAGED
from peftbench.plan.resources import resource_problems
from peftbench.plan.sweep_plan import load_plan
from tests.conftest import DEMO, REPO, check_golden

CLUSTERS = PACKAGED
SWEEP = {
    "name": "gpu",
    "models": ["minilm-l6"],
    "tasks": ["movie_sentiment"],
    "methods": {
        "full": {"resources": {"gpus": 4, "time_min": 600}},
        "lora": {"resources": {"gpus": 1, "time_min": 120}},
    },
}


def filled(name: str, tmp_path: Path) -> Path:
    """A shipped site profile with every FILL_ME replaced, as a user would have it."""
    text = (CLUSTERS / f"{name}.yaml").read_text().replace("FILL_ME/", "/shared/").replace("FILL_ME", "proj1")
    path = tmp_path / f"{name}.yaml"
    path.write_text(text)
    return path


def test_one_shape_per_resource_request_and_cpus_memory_scale_per_gpu(sweep_file, tmp_path):
    profile = load_cluster(str(filled("vega", tmp_path)))
    runs = load_sweep(sweep_file(SWEEP)).runs
    shapes = {r.label: shape_of(r, profile.slurm) for r in runs}
    assert shapes["full"].gpus == 4 and shapes["full"].cpus == 4 * 32 and shapes["full"].mem_gb == 4 * 120
    assert shapes["lora"].gpus == 1 and shapes["lora"].gpu_type == "a100"
    assert not resource_problems(runs, profile, "s.yaml")


def test_requests_the_site_cannot_satisfy_are_refused(sweep_file, tmp_path):
    profile = load_cluster(str(filled("vega", tmp_path)))
    data = {
        **SWEEP,
        "methods": {
            "full": {"resources": {"gpus": 8, "time_min": 100_000}},
            "lora": {"resources": {"gpus": 1, "gpu_type": "h200"}},
        },
    }
    found = [str(p) for p in resource_problems(load_sweep(sweep_file(data)).runs, profile, "s.yaml")]
    assert any(
        "methods.full.resources.gpus: 8 GPUs per node requested, but a a100 node" in p
        and "nodes: 2 with gpus: 4" in p
        for p in found
    )
    assert any(
        "methods.full.resources.time_min: 100000 min is over the partition's limit" in p for p in found
    )
    assert any("methods.lora.resources.gpu_type: Unknown GPU type 'h200'. Allowed: a100." in p for p in found)


def test_unfilled_site_facts_block_submission(sweep_file):
    with pytest.raises(ConfigError) as info:
        load_plan(sweep_file(SWEEP), "komondor")
    message = str(info.value)
    assert "slurm.partition: This site fact is still FILL_ME" in message
    assert "slurm.account" in message and "container.image" in message


def test_an_unwritable_run_folder_is_refused(sweep_file, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    with pytest.raises(ConfigError, match="is not writable"):
        load_plan(sweep_file(SWEEP), "local", blocker / "runs")


def test_sbatch_script_golden(sweep_file, tmp_path, monkeypatch):
    """The #SBATCH lines for a 4-GPU full fine-tuning run on Vega, as submitit writes them."""
    import submitit

    monkeypatch.setenv("PATH", f"{stand_in_slurm(tmp_path / 'bin')}{os.pathsep}{os.environ['PATH']}")
    profile = load_cluster(str(filled("vega", tmp_path)))
    [full] = [r for r in load_sweep(sweep_file(SWEEP)).runs if r.label == "full"]
    shape = shape_of(full, profile.slurm)
    executor = submitit.AutoExecutor(folder="/runs/gpu/.slurm/%j", cluster="slurm")
    executor.update_parameters(**executor_parameters(shape, profile, "peftbench-gpu"))
    text = executor._executor._make_submission_file_text("python -m submitit.core._submit X", "UID")
    lines = [line for line in text.splitlines() if line.startswith("#SBATCH")]
    check_golden("sbatch_vega_full_4gpu.txt", "\n".join(lines) + "\n")


def test_an_array_task_runs_as_many_torch_threads_as_slurm_gave_it_cpus(monkeypatch: pytest.MonkeyPatch):
    import torch

    from peftbench.launch.array_task import threads_of_allocation

    before = torch.get_num_threads()
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    try:
        monkeypatch.setenv("SLURM_CPUS_PER_TASK", "1")
        assert threads_of_allocation() == 1 and torch.get_num_threads() == 1
        monkeypatch.setenv("OMP_NUM_THREADS", "3")  # the user's own setting wins
        assert threads_of_allocation() is None
        monkeypatch.delenv("OMP_NUM_THREADS")
        monkeypatch.delenv("SLURM_CPUS_PER_TASK")  # not under Slurm: torch's default stays
        assert threads_of_allocation() is None
    finally:
        torch.set_num_threads(before)


def test_a_multi_process_job_ends_when_one_process_dies_and_a_one_process_job_is_left_alone(sweep_file):
    profile = load_cluster("dev2")
    runs = load_sweep(sweep_file({**SWEEP, "methods": {"full": {}}, "resources": {"nodes": 2}})).runs
    two = executor_parameters(shape_of(runs[0], profile.slurm), profile, "x")
    assert two["slurm_srun_args"] == ["--kill-on-bad-exit=1"]
    one = executor_parameters(dataclasses.replace(shape_of(runs[0], profile.slurm), nodes=1), profile, "x")
    assert "slurm_srun_args" not in one


def test_a_profile_naming_a_missing_slurm_conf_is_refused_with_how_to_start_it(
    sweep_file, tmp_path, monkeypatch
):
    from peftbench.launch.slurm_cluster import use_cluster

    text = (
        (CLUSTERS / "dev2.yaml").read_text().replace("/etc/slurm-dev2/slurm.conf", str(tmp_path / "no.conf"))
    )
    (tmp_path / "dev2.yaml").write_text(text)
    with pytest.raises(ConfigError) as refused:
        load_plan(sweep_file({**SWEEP, "methods": {"full": {}}}), str(tmp_path / "dev2.yaml"))
    assert f"slurm.conf: No file {tmp_path / 'no.conf'}" in str(refused.value)
    assert "slurm/local_up_2node.sh" in str(refused.value)  # the profile's own start command
    monkeypatch.delenv("SLURM_CONF", raising=False)
    use_cluster(load_cluster("dev2"))
    assert os.environ["SLURM_CONF"] == "/etc/slurm-dev2/slurm.conf"
    use_cluster(load_cluster("dev"))  # a profile naming no conf leaves the environment as it is
    assert os.environ["SLURM_CONF"] == "/etc/slurm-dev2/slurm.conf"


FIXTURES = REPO / "tests" / "fixtures" / "array_jobs"
SITE = str(FIXTURES / "site.yaml")  # a made-up GPU site: two GPU types, arrays of at most 3 tasks
INCREMENTAL = FIXTURES / "incremental-packed.yaml"


@pytest.mark.parametrize("sweep", [DEMO, INCREMENTAL], ids=["demo", "incremental-packed"])
def test_the_arrays_a_plan_becomes_are_unchanged(sweep: Path, tmp_path: Path):
    """Every array of a whole sweep: executor parameters, tasks, chunks, dependencies, spec files.

    Regenerate with PEFTBENCH_UPDATE_GOLDEN=1 after a change that is meant to move them."""
    plan = load_plan(sweep, SITE, tmp_path / "runs")
    described = [job.described(plan.runs_dir) for job in array_jobs(plan, plan.runs)]
    check_golden(f"array_jobs/{sweep.stem}.json", json.dumps(described, indent=1) + "\n")


def test_children_come_after_their_parents_and_wait_only_for_parents_not_yet_done(tmp_path: Path):
    plan = load_plan(INCREMENTAL, SITE, tmp_path / "runs")
    parents = [r for r in plan.runs if r.label == "full"]
    children = [r for r in plan.runs if r.label == "lora_after_full"]
    jobs = array_jobs(plan, plan.runs)
    [first] = [i for i, job in enumerate(jobs) if parents[0] in job.runs]
    [last] = [i for i, job in enumerate(jobs) if children[0] in job.runs]
    assert first < last and jobs[last].after == sorted(r.run_id for r in parents)
    # Children alone: they wait for a parent whose job is live, not for one already done.
    [alone] = array_jobs(plan, children, live={parents[1].run_id})
    assert alone.after == [parents[1].run_id]
    assert "dependency" not in alone.parameters["slurm_additional_parameters"]  # job ids: at submission


def test_the_plan_settles_each_runs_pack_and_time_and_arrays_are_split_at_max_array_size(tmp_path: Path):
    plan = load_plan(INCREMENTAL, SITE, tmp_path / "runs")
    placed = {r.run.label: r for r in plan.placed.values()}
    assert placed["lora_cpu"].runs_per_task == 2 and placed["lora_cpu"].shape.mem_gb == 2 * 8
    assert placed["bitfit"].runs_per_task == 8  # auto: capped by the 8 cores an a100 comes with
    assert placed["full_ddp"].runs_per_task == 1 and placed["full"].time_min == 90
    jobs = array_jobs(plan, [r for r in plan.runs if r.label == "lora_cpu"])
    assert [len(job.packs) for job in jobs] == [3]  # 6 runs, 2 to a task
    bitfit = array_jobs(plan, [r for r in plan.runs if r.label == "bitfit"])
    assert [len(job.packs) for job in bitfit] == [2] and bitfit[0].packed  # 12 runs, 8 to a task
    [job] = array_jobs(plan, [r for r in plan.runs if r.label == "full"])
    assert job.parameters["timeout_min"] == 90


def test_the_launcher_estimates_nothing_and_imports_no_torch():
    """launch/ reads the plan's records: no torch, no memory estimate, no pack size worked out again."""
    banned_modules = {"torch", "peftbench.plan.memory", "peftbench.plan.packing", "peftbench.models.shapes"}
    banned_names = {"memory_rows", "pack_sizes", "pack_size", "estimate_run"}
    found = []
    for path in sorted((REPO / "src" / "peftbench" / "launch").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names = {a.name for a in node.names}
                found += [f"{path.name}: {n}" for n in sorted(names) if n.split(".")[0] in banned_modules]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = {a.name for a in node.names}
                if node.module.split(".")[0] in banned_modules or node.module in banned_modules:
                    found.append(f"{path.name}: {node.module}")
                found += [f"{path.name}: {n}" for n in sorted(names & banned_names)]
    assert found == []


def stand_in_slurm(folder: Path) -> Path:
    """`sbatch` that answers with a new job id (4201, 4202, ...) and keeps each script; `srun`."""
    folder.mkdir()
    sbatch = folder / "sbatch"
    sbatch.write_text(
        "#!/bin/sh\n"
        f'n=$(ls {folder}/script-* 2>/dev/null | wc -l); id=$((4201 + n))\n'
        f'for last; do :; done; cp "$last" {folder}/script-$id\n'
        'echo "Submitted batch job $id"\n'
    )
    (folder / "srun").write_text("#!/bin/sh\nexit 0\n")
    for script in (sbatch, folder / "srun"):
        script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return folder


def test_submitting_writes_the_specs_records_each_array_and_chains_children_by_job_id(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    bin_dir = stand_in_slurm(tmp_path / "bin")
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    plan = load_plan(INCREMENTAL, SITE, tmp_path / "runs")
    runs = [r for r in plan.runs if r.label in ("full", "lora_after_full")]
    submissions = submit_runs(plan, runs)
    assert [s.job_ids for s in submissions] == [["4201_0", "4201_1"], ["4202_0", "4202_1"]]
    assert all((plan.sweep_dir / r.run_id / "spec.json").is_file() for r in runs)
    assert [s.job_ids for s in read_submissions(plan.sweep_dir)] == [s.job_ids for s in submissions]
    parents, children = (bin_dir / "script-4201").read_text(), (bin_dir / "script-4202").read_text()
    assert "--dependency" not in parents
    assert "#SBATCH --dependency=afterok:4201_0:4201_1" in children
    assert "#SBATCH --kill-on-invalid-dep=yes" in children and "#SBATCH --gpus-per-node=1" in children
