"""The Slurm launcher's pure parts: resource shapes, refusals before submission, the sbatch script."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import pytest

from peftbench.core.errors import ConfigError
from peftbench.launch.slurm import executor_parameters, shape_of
from peftbench.plan.loading import load_cluster, load_sweep
from peftbench.plan.profiles import PACKAGED
from peftbench.plan.resources import resource_problems
from peftbench.plan.sweep_plan import load_plan
from tests.conftest import check_golden

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


def test_sbatch_script_golden(sweep_file, tmp_path):
    """The #SBATCH lines for a 4-GPU full fine-tuning run on Vega, as submitit writes them."""
    import submitit

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
