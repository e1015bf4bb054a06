"""A lint of apptainer/peftbench.def: what `make sif` builds must hold what the image promises.

Apptainer cannot be installed on these machines (no setuid/user namespaces, no registry access),
so the image is never built here. Instead: the sections are parsed the way Apptainer parses them,
their shell is syntax-checked and the %environment is run by sh, and the install path is checked
for pins and hashes. The install script itself runs at every commit: `make setup` uses it in CI.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from tests.conftest import REPO

DEF = REPO / "apptainer" / "peftbench.def"
INSTALL = REPO / "scripts" / "install.sh"
BUILD_STEPS = REPO / "apptainer" / "build_steps.sh"
REHEARSAL = REPO / "apptainer" / "rehearsal" / "rehearse.sh"
REQUIRED = ("labels", "files", "post", "environment", "runscript", "test", "help")


def read_definition(path: Path) -> list[tuple[dict[str, str], dict[str, str]]]:
    """(header, sections) of each stage: like Apptainer, a `Bootstrap:` line opens a stage, a line
    starting with `%` a section (`%files from build` is a `files` section); `#` lines in a header
    are comments."""
    stages: list[tuple[dict[str, str], dict[str, str]]] = []
    current = None
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.lower().startswith("bootstrap:"):
            stages.append(({}, {}))
            current = None
        if not stages:
            continue
        header, sections = stages[-1]
        if line.startswith("%"):
            current = line[1:].split()[0].lower()
            sections[current] = ""
        elif current is not None:
            sections[current] += line + "\n"
        elif line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.partition(":")
            header[key.strip().lower()] = value.strip()
    return stages


STAGES = read_definition(DEF)
(BUILD_HEADER, BUILD), (HEADER, SECTIONS) = STAGES  # the build stage, then the final image


def shell_function(path: Path, name: str) -> str:
    """The body of `name() { ... }` in a shell script (up to the first line that is `}`)."""
    text = path.read_text(encoding="utf-8")
    found = re.search(rf"^{name}\(\) \{{\n(.*?)^\}}$", text, re.MULTILINE | re.DOTALL)
    assert found, f"no function {name} in {path}"
    return found.group(1)


# What each stage's %post runs: its own lines, then the shared build steps it calls (with the checks
# both stages use).
CHECKS = shell_function(BUILD_STEPS, "check_torch") + shell_function(BUILD_STEPS, "check_prebuilt_ops")
BUILD_RUNS = BUILD["post"] + shell_function(BUILD_STEPS, "build") + CHECKS
FINAL_RUNS = SECTIONS["post"] + shell_function(BUILD_STEPS, "final") + CHECKS


def code_lines(text: str) -> list[str]:
    """Shell lines without comments, continuation lines joined."""
    lines = text.replace("\\\n", " ").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.strip().startswith("#")]


def test_required_sections_are_present():
    assert set(REQUIRED) <= set(SECTIONS), f"missing: {set(REQUIRED) - set(SECTIONS)}"


def test_two_stages_each_from_an_official_cuda_image_pinned_by_digest_with_its_tag():
    assert [h.get("stage") for h, _ in STAGES] == ["build", "final"]
    for header, _ in STAGES:
        assert header["bootstrap"] == "docker"
        assert re.fullmatch(r"nvidia/cuda(:[\w.-]+)?@sha256:[0-9a-f]{64}", header["from"]), header["from"]
    tags = re.findall(r"^# tag: (\S+)\nFrom: (\S+)$", DEF.read_text(encoding="utf-8"), re.MULTILINE)
    assert [tag for tag, _ in tags] == [
        "nvidia/cuda:12.8.1-devel-ubuntu22.04",
        "nvidia/cuda:12.8.1-runtime-ubuntu22.04",
    ]
    assert [pin for _, pin in tags] == [
        BUILD_HEADER["from"],
        HEADER["from"],
    ]  # what `make base-digest` checks
    base_label = re.search(r"org\.opencontainers\.image\.base\.name (\S+)", SECTIONS["labels"])
    assert base_label and base_label.group(1) == tags[1][0]


def test_the_torch_cuda_build_matches_the_base_image_cuda():
    cuda = re.search(r"nvidia/cuda:(\d+)\.(\d+)", SECTIONS["labels"])
    index = re.search(r"TORCH_INDEX=https://download\.pytorch\.org/whl/cu(\d+)", BUILD["post"])
    assert cuda and index, "the base CUDA version and the torch CUDA index must both be named"
    assert index.group(1) == cuda.group(1) + cuda.group(2)


def test_post_installs_only_through_the_install_script():
    post = code_lines(BUILD_RUNS) + code_lines(FINAL_RUNS)
    assert not [line for line in post if re.search(r"\bpip3?\b.*\binstall\b", line)], "pip outside install.sh"
    assert any("scripts/install.sh" in line and "EDITABLE=0" in line for line in post)
    assert any("assert torch.version.cuda" in line for line in post), "check that torch is a CUDA build"


def test_the_install_script_installs_the_lock_with_hashes_and_nothing_unpinned():
    lines = [line for line in code_lines(INSTALL.read_text(encoding="utf-8")) if " install " in line]
    assert any(
        "--require-hashes --no-deps --no-build-isolation -r requirements.lock" in line for line in lines
    )
    assert any("--require-hashes --no-deps -r requirements-assets.txt" in line for line in lines)
    allowed = {"-q", "--require-hashes", "--no-deps", "--no-build-isolation", "-e", ".", "-r", '"$PIP_SPEC"'}
    allowed |= {"requirements.lock", "requirements-torch.txt", '${torch_options[@]+"${torch_options[@]}"}'}
    allowed |= {"requirements-assets.txt", "<(grep", "-A2", "'^setuptools=='", "requirements.lock)"}
    for line in lines:
        words = line.split(" install ", 1)[1].split()
        assert set(words) <= allowed, f"unpinned or unknown install: {line}"
    assert re.search(r'PIP_SPEC="\$\{PIP_SPEC:-pip==\d+(\.\d+)*\}"', INSTALL.read_text(encoding="utf-8"))
    torch_pins = code_lines((REPO / "requirements-torch.txt").read_text(encoding="utf-8"))
    assert torch_pins and all(re.fullmatch(r"[\w-]+==[\w.+]+", pin) for pin in torch_pins)


def test_labels_carry_version_commit_and_lock_hash():
    written = SECTIONS["labels"] + "".join(
        line for line in FINAL_RUNS.splitlines(keepends=True) if "echo" in line
    )
    labels = ("org.peftbench.version", "org.peftbench.git-commit", "org.peftbench.lock-sha256")
    for label in (*labels, "org.peftbench.deepspeed-prebuilt-ops"):
        assert label in written, f"label {label} is neither in %labels nor written by %post"
    assert '>> "$APPTAINER_LABELS"' in FINAL_RUNS
    assert "sha256sum requirements.lock" in FINAL_RUNS


def test_every_file_copied_in_exists_or_is_written_by_make_sif():
    makefile = (REPO / "Makefile").read_text(encoding="utf-8")
    for line in code_lines(BUILD["files"]):
        source = line.split()[0]
        assert (REPO / source).exists() or f"> {source}" in makefile, f"%files source {source} missing"
    copied = {line.split()[0] for line in code_lines(BUILD["files"])}
    read_by_install = set(
        re.findall(r"\b(requirements[\w.-]*\.txt|requirements\.lock)\b", INSTALL.read_text())
    )
    # The rehearsal's first build found one missing (requirements-assets.txt, read at pip check).
    assert read_by_install <= copied, f"install.sh reads {read_by_install - copied}, not copied in"
    assert code_lines(SECTIONS["files"]) == ["/opt/peftbench /opt/peftbench"]  # the built venv, from build
    assert "%files from build" in DEF.read_text(encoding="utf-8")


def test_runscript_runs_peftbench_and_test_runs_doctor():
    assert code_lines(SECTIONS["runscript"]) == ['exec peftbench "$@"']
    assert code_lines(SECTIONS["test"])[0].startswith("peftbench doctor")


def test_the_build_stage_prebuilds_cpu_adam_and_the_final_image_has_no_toolchain():
    build = "\n".join(code_lines(BUILD_RUNS))
    assert "DS_BUILD_CPU_ADAM=1" in build and "DS_BUILD_OPS=0" in build  # what zero3_offload needs, only
    assert (
        build.index("DS_BUILD_CPU_ADAM=1")
        < build.index("build_steps.sh build")
        < build.index("scripts/install.sh")
    )  # set before DeepSpeed builds
    assert "assert 'cpu_adam' in built" in BUILD_RUNS and '> "$PREFIX/prebuilt-ops"' in BUILD_RUNS
    assert "PREFIX=/opt/peftbench" in BUILD_STEPS.read_text(encoding="utf-8")
    final = "\n".join(code_lines(SECTIONS["post"]))  # what the final stage installs: the .def's own lines
    assert not re.search(r"\b(g\+\+|gcc|build-essential|python3\.11-dev)\b", final), (
        "toolchain in the final image"
    )
    assert "for compiler in cc gcc c++ g++" in FINAL_RUNS  # and the final steps fail if one is there
    assert "TORCH_EXTENSIONS_DIR" in SECTIONS["environment"]
    assert "TEST_ASSETS=0" in BUILD["post"]  # the tests' offline model stays out of the image


@pytest.mark.parametrize("section", ["build post", "post", "environment", "runscript", "test"])
def test_shell_sections_parse(section: str):
    text = BUILD["post"] if section == "build post" else SECTIONS[section]
    done = subprocess.run(["sh", "-n"], input=text, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


REHEARSAL_SCRIPTS = ("rehearse", "run_inside", "slurm_inside", "users")


@pytest.mark.parametrize(
    "script", ["apptainer/build_steps.sh", *(f"apptainer/rehearsal/{n}.sh" for n in REHEARSAL_SCRIPTS)]
)
def test_build_steps_and_rehearsal_scripts_parse(script: str):
    done = subprocess.run(["bash", "-n", str(REPO / script)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_the_definition_and_the_rehearsal_run_the_same_build_steps():
    """Both %post sections call apptainer/build_steps.sh (copied in by %files), and so does the
    rehearsal, which takes its %files, `%files from build` and %environment from the .def itself:
    neither has install or check steps of its own that could drift from the other's."""
    steps = "bash /opt/peftbench/src/apptainer/build_steps.sh"
    assert f"{steps} build" in " ".join(code_lines(BUILD["post"]))
    assert f"{steps} final" in " ".join(code_lines(SECTIONS["post"]))
    copied = "apptainer/build_steps.sh /opt/peftbench/src/apptainer/build_steps.sh"
    assert copied in code_lines(BUILD["files"])
    rehearsal = " ".join(code_lines(REHEARSAL.read_text(encoding="utf-8")))
    assert f"{steps} build" in rehearsal and f"{steps} final" in rehearsal
    for section in ("def_section 1 files", 'def_section 2 "files from build"', "def_section 2 environment"):
        assert section in rehearsal, section
    assert not re.search(r"\bpip3? install\b|scripts/install\.sh|import deepspeed|sha256sum req", rehearsal)
    own = code_lines(BUILD["post"]) + code_lines(SECTIONS["post"])
    assert not [line for line in own if re.search(r"import (torch|deepspeed)|APPTAINER_LABELS", line)]


def deepspeed_op_names() -> set[str]:
    """Every op name DeepSpeed's builders declare (NAME = "..."), read from its sources unimported."""
    import importlib.util

    spec = importlib.util.find_spec("deepspeed")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("deepspeed is not installed")
    builders = Path(next(iter(spec.submodule_search_locations))) / "ops" / "op_builder"
    return {
        name
        for path in builders.rglob("*.py")
        for name in re.findall(r'^    NAME = "(\w+)"', path.read_text(encoding="utf-8"), re.MULTILINE)
    }


def building_the_image_in_the_docs() -> str:
    docs = (REPO / "docs" / "clusters.md").read_text(encoding="utf-8")
    return docs[docs.index("## Building the image") : docs.index("## Sharing it across labs")]


def test_the_docs_name_the_ops_and_stages_the_definition_has():
    """docs/clusters.md's account of the build names the same DeepSpeed ops, DS_BUILD_ settings and
    stages as apptainer/peftbench.def (the docs once said DS_BUILD_FUSED_ADAM while it built cpu_adam)."""
    docs, definition = building_the_image_in_the_docs(), DEF.read_text(encoding="utf-8")
    assert set(re.findall(r"DS_BUILD_[A-Z_]+", docs)) == set(re.findall(r"DS_BUILD_[A-Z_]+", definition))
    ops = deepspeed_op_names()
    named = lambda text: {word for word in re.findall(r"\b\w+\b", text) if word in ops}  # noqa: E731
    assert named(docs) == named(definition) and "cpu_adam" in named(docs)
    stages = {header["stage"] for header, _ in STAGES}
    assert set(re.findall(r"`(\w+)` stage", docs)) == stages == {"build", "final"}
    assert "not a dependency yet" not in docs


def run_environment(**outside: str) -> dict[str, str]:
    """The image's %environment sourced by sh with `outside` set, as Apptainer does at start."""
    names = [
        "HF_HOME",
        "HF_HUB_OFFLINE",
        "TOKENIZERS_PARALLELISM",
        "TORCH_EXTENSIONS_DIR",
        "PYTHONNOUSERSITE",
    ]
    script = SECTIONS["environment"] + "".join(f'echo "{n}=${{{n}}}"\n' for n in names)
    env = {"PATH": "/usr/bin:/bin", "TMPDIR": "/scratch/job1", **outside}
    out = subprocess.run(["sh", "-c", script], capture_output=True, text=True, env=env, check=True).stdout
    return dict(line.split("=", 1) for line in out.splitlines())


def test_environment_defaults_are_offline_and_overridable():
    defaults = run_environment()
    assert defaults["HF_HOME"] == "/hf"
    assert defaults["HF_HUB_OFFLINE"] == "1"
    assert defaults["TOKENIZERS_PARALLELISM"] == "false"
    assert defaults["TORCH_EXTENSIONS_DIR"].startswith("/scratch/job1/torch-extensions-")
    assert defaults["PYTHONNOUSERSITE"] == "1"
    chosen = run_environment(HF_HOME="/ceph/hf", HF_HUB_OFFLINE="0", TORCH_EXTENSIONS_DIR="/x")
    assert (chosen["HF_HOME"], chosen["HF_HUB_OFFLINE"], chosen["TORCH_EXTENSIONS_DIR"]) == (
        "/ceph/hf",
        "0",
        "/x",
    )


def test_the_makefile_builds_a_versioned_image_with_fakeroot():
    makefile = (REPO / "Makefile").read_text(encoding="utf-8")
    assert "SIF ?= peftbench-$(VERSION).sif" in makefile
    assert "SIF_BUILD_FLAGS ?= --fakeroot" in makefile
    assert "$(APPTAINER) build $(SIF_BUILD_FLAGS) $(SIF) apptainer/peftbench.def" in makefile
