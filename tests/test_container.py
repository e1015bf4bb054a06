"""The `apptainer exec` line the Slurm launcher hands to submitit as `python=`.

Apptainer cannot be installed on these machines, so nothing here runs it: the line is checked
against a golden file, and parsed back the way bash and Apptainer would parse it.
After an intended change, regenerate the golden file and review its diff:
    PEFTBENCH_UPDATE_GOLDEN=1 .venv/bin/python -m pytest tests/test_container.py
"""

from __future__ import annotations

import csv
import shlex
from pathlib import Path

import pytest

from peftbench.launch.container import container_python, env_flag_value
from peftbench.plan.schema import ClusterProfile
from tests.conftest import check_golden

IMAGE = "/ceph/projects/nlp-shared/images/peftbench-0.1.0.sif"
DIGEST = "0123456789abcdef" * 4


def profile(**container) -> ClusterProfile:
    settings = {
        "image": IMAGE,
        "binds": ["/ceph/projects/nlp-shared/hf:/hf", "/ceph/projects/my lab/data:/data:ro"],
        "env": {"NCCL_DEBUG": "WARN", "WANDB_TAGS": "a,b=c", "GREETING": 'it\'s "quoted" here'},
        **container,
    }
    return ClusterProfile(name="vega", launcher="local", container=settings)


def apptainer_env(value: str) -> dict[str, str]:
    """pflag's StringToString, which parses Apptainer's --env: one `=` is one pair, else CSV."""
    pairs = [value.strip('"')] if value.count("=") == 1 else next(csv.reader([value]))
    return dict(pair.split("=", 1) for pair in pairs)


def parse(line: str) -> tuple[list[str], list[str], dict[str, str], str, list[str]]:
    """(flags, binds, env, image, command) as bash and then Apptainer would see them."""
    words = shlex.split(line)
    assert words[:2] == ["apptainer", "exec"]
    flags, binds, env, i = [], [], {}, 2
    while words[i].startswith("--"):
        if words[i] == "--bind":
            binds.append(words[i + 1])
            i += 2
        elif words[i] == "--env":
            env |= apptainer_env(words[i + 1])
            i += 2
        else:
            flags.append(words[i])
            i += 1
    return flags, binds, env, words[i], words[i + 1 :]


def test_the_exec_line_matches_its_golden_file():
    check_golden("apptainer_exec.txt", container_python(profile(), image_digest=DIGEST) + "\n")


def test_the_line_parses_back_to_the_profile():
    flags, binds, env, image, command = parse(container_python(profile(), image_digest=DIGEST))
    assert flags == ["--nv"]
    assert binds == profile().container.binds
    assert env == {
        **profile().container.env,
        "PEFTBENCH_IMAGE": IMAGE,
        "PEFTBENCH_IMAGE_SHA256": DIGEST,
    }
    assert (image, command) == (IMAGE, ["python"])


def test_no_container_no_wrapper():
    assert container_python(ClusterProfile(name="local", launcher="local")) is None


def test_python_with_arguments_and_no_gpu():
    line = container_python(profile(nv=False, binds=[], env={}), "python3 -X faulthandler")
    flags, binds, env, image, command = parse(line)
    assert (flags, binds, image, command) == ([], [], IMAGE, ["python3", "-X", "faulthandler"])
    assert env == {"PEFTBENCH_IMAGE": IMAGE}  # the image is not on this machine: no sha256


def test_the_image_is_hashed_once_then_remembered(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    import hashlib

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    image = tmp_path / "peftbench-0.1.0.sif"
    image.write_bytes(b"not really squashfs" * 1000)
    digest = hashlib.sha256(image.read_bytes()).hexdigest()
    first = parse(container_python(profile(image=str(image))))[2]
    assert first["PEFTBENCH_IMAGE_SHA256"] == digest

    monkeypatch.setattr(hashlib, "sha256", lambda *a: pytest.fail("the image was hashed again"))
    assert parse(container_python(profile(image=str(image))))[2]["PEFTBENCH_IMAGE_SHA256"] == digest


@pytest.mark.parametrize("value", ["plain", "a,b", "x=y", "a,b=c", 'say "hi", then=go', '"x=1"', ""])
def test_env_values_survive_apptainer_parsing(value: str):
    assert apptainer_env(env_flag_value("KEY", value)) == {"KEY": value}


def test_a_value_apptainer_would_mangle_is_refused_by_name():
    with pytest.raises(ValueError, match=r"container\.env\.TITLE"):
        env_flag_value("TITLE", 'the "end"')


def test_the_profile_in_docs_clusters_md_is_valid_and_gives_the_documented_line(tmp_path: Path):
    from peftbench.plan.loading import load_cluster

    docs = (Path(__file__).parents[1] / "docs" / "clusters.md").read_text(encoding="utf-8")
    example = docs.split("```yaml\n", 1)[1].split("```", 1)[0]
    (tmp_path / "mysite.yaml").write_text(example, encoding="utf-8")
    line = container_python(load_cluster(str(tmp_path / "mysite.yaml")), image_digest="0" * 64)
    documented = docs.split("Each task then runs as", 1)[1].split("```\n", 2)[1].replace("\\\n  ", "")
    assert documented.startswith(line.split(" --env PEFTBENCH_IMAGE_SHA256")[0])
