"""`peftbench doctor`: is this environment, inside or outside the image, fit to run a sweep?

Every check gives `ok`, `fail`, or `info` — a fact that is not a problem here (no GPU on a CPU
machine, DeepSpeed not installed). The command prints them all and exits non-zero listing the
failures. Nothing here downloads, builds or writes outside a temporary file in the run folder.
"""

from __future__ import annotations

import importlib.util
import json
import os
import platform
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Literal

from packaging.version import Version
from rich.console import Console

from peftbench import __version__
from peftbench.core.checkout import lock_path
from peftbench.core.spec import RunSpec
from peftbench.plan.schema import ClusterProfile, ContainerSettings
from peftbench.tools.lockfile import TORCH_PIN_FILE, read_lock, read_torch_pin

Status = Literal["ok", "info", "fail"]


# Must be identical inside and outside the image: submitit pickles the task on the login node
# (cloudpickle) and unpickles it in the container.
SAME_EVERYWHERE = ("submitit", "cloudpickle", "peftbench")


PROBE = (
    "import json, platform\n"
    "from importlib import metadata\n"
    "def version(name):\n"
    "    try:\n"
    "        return metadata.version(name)\n"
    "    except metadata.PackageNotFoundError:\n"
    "        return None\n"
    "names = ('torch',) + " + repr(SAME_EVERYWHERE) + "\n"
    "print(json.dumps({'python': platform.python_version(), **{n: version(n) for n in names}}))\n"
)


COMPARED = ("python", "torch", *SAME_EVERYWHERE)


@dataclass(frozen=True)
class Check:
    name: str
    status: Status
    detail: str

    def __str__(self) -> str:
        return f"{self.name}: {self.detail}"


@dataclass(frozen=True)
class DoctorOptions:
    runs_dir: Path = Path("runs")
    runs: list[RunSpec] | None = None  # a sweep's runs: check its hub models and datasets are cached
    profile: ClusterProfile | None = None  # with a container: compare versions inside and outside
    require_gpu: bool = False
    lock: Path | None = None

    @classmethod
    def named(
        cls, sweep: Path | None, cluster: str | None, runs_dir: Path | None, require_gpu: bool = False
    ) -> DoctorOptions:
        """What `peftbench doctor` checks: the sweep's runs and the profile, each only when named; the
        run folder given, else the profile's, else ./runs. A bad sweep or profile raises ConfigError."""
        from peftbench.plan.loading import load_cluster, load_sweep

        profile = load_cluster(cluster) if cluster else None
        runs = load_sweep(sweep).runs if sweep else None
        default = Path(profile.runs_dir) if profile else Path("runs")
        return cls(runs_dir or default, runs, profile, require_gpu)


def run_doctor(options: DoctorOptions) -> list[Check]:
    lock = options.lock or lock_path()
    checks = [
        *check_lock(lock),
        check_torch(lock.with_name(TORCH_PIN_FILE)),
        check_peftbench(),
        *check_gpu(options.require_gpu),
        check_deepspeed(),
        *check_deepspeed_ops(),
        check_torch_extensions_dir(),
        *check_hf_cache(options.runs),
        check_runs_dir(options.runs_dir),
    ]
    if options.profile is not None:
        checks += check_site_facts(options.profile)
    if options.profile is not None and options.profile.container is not None:
        checks += check_container(options.profile.container)
    return checks


def check_site_facts(profile: ClusterProfile) -> list[Check]:
    """Profile keys still FILL_ME: facts only the site knows, which `sweep` refuses to submit without."""
    unfilled = profile.unfilled()
    if not unfilled:
        return [Check("site facts", "ok", f"profile '{profile.name}' has no FILL_ME left")]
    return [
        Check(
            "site facts",
            "fail",
            f"still FILL_ME in profile '{profile.name}': {', '.join(unfilled)} — set them to this site's "
            "values in the profile's YAML (docs/clusters.md)",
        )
    ]


def check_lock(lock: Path) -> list[Check]:
    """Python's minor version and every package against requirements.lock."""
    python = platform.python_version()
    if not lock.is_file():
        return [Check("lock", "fail", f"no requirements.lock at {lock} (set PEFTBENCH_LOCK to its path)")]
    pins = read_lock(lock)
    minor = ".".join(python.split(".")[:2])
    checks = [
        Check("python", "ok", f"{python} (the lock was made with {pins.python})")
        if pins.python in (None, minor)
        else Check("python", "fail", f"{python}, but {lock.name} was made with Python {pins.python}")
    ]
    wrong = []
    for name, pinned in sorted(pins.pins.items()):
        installed = _installed(name)
        if installed != pinned:
            wrong.append(f"{name} {installed or 'not installed'} (lock: {pinned})")
    if wrong:
        fix = f"pip install --require-hashes --no-deps -r {lock}"
        checks.append(Check("packages", "fail", f"differ from {lock}: {'; '.join(wrong)} — fix: {fix}"))
    else:
        checks.append(Check("packages", "ok", f"all {len(pins.pins)} match {lock}"))
    submitit, locked = _installed("submitit"), pins.pins.get("submitit")
    if submitit == locked:
        checks.append(
            Check("submitit", "ok", f"{submitit}, as locked (so the same inside and outside the image)")
        )
    else:
        checks.append(Check("submitit", "fail", f"{submitit}, but the lock pins {locked}"))
    return checks


def _installed(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def check_torch(pin_file: Path) -> Check:
    """torch is outside the hashed lock: its version must still be requirements-torch.txt's."""
    installed = _installed("torch")
    pinned = read_torch_pin(pin_file) if pin_file.is_file() else None
    if installed is None:
        return Check("torch", "fail", f"not installed (pip install -r {pin_file})")
    build = Version(installed).local or "default build"
    if pinned is not None and Version(installed).public != Version(pinned).public:
        return Check("torch", "fail", f"{installed}, but {pin_file.name} pins {pinned}")
    return Check("torch", "ok", f"{installed} (pin {pinned or 'not found'}; build: {build})")


def check_peftbench() -> Check:
    from peftbench.core.checkout import git_state
    from peftbench.core.image import IMAGE_ENV

    commit, dirty = git_state()
    where = f"commit {commit[:12]}{' (uncommitted changes)' if dirty else ''}" if commit else "no git commit"
    image = os.environ.get(IMAGE_ENV) or os.environ.get("APPTAINER_CONTAINER")
    return Check("peftbench", "info", f"{__version__}, {where}" + (f", in image {image}" if image else ""))


def check_gpu(require_gpu: bool) -> list[Check]:
    """CUDA devices, NCCL and bf16. No GPU is a fact on a CPU machine, a failure with --require-gpu."""
    import torch

    if not torch.cuda.is_available():
        why = "torch is a CPU build" if torch.version.cuda is None else "no device visible (--nv? a GPU job?)"
        return [Check("cuda", "fail" if require_gpu else "info", f"no CUDA GPU: {why}; runs use the CPU")]
    names = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    checks = [Check("cuda", "ok", f"CUDA {torch.version.cuda}, {len(names)} GPU(s): {', '.join(names)}")]
    try:
        nccl = ".".join(str(part) for part in torch.cuda.nccl.version())
        checks.append(Check("nccl", "ok", f"NCCL {nccl} (multi-GPU and multi-node runs)"))
    except (AttributeError, RuntimeError) as err:
        checks.append(Check("nccl", "fail", f"NCCL unavailable in this torch build: {err}"))
    bf16 = torch.cuda.is_bf16_supported()
    detail = "supported: precision auto trains in bf16" if bf16 else "not supported: precision auto is fp32"
    checks.append(Check("bf16", "ok" if bf16 else "info", detail))
    return checks


def check_deepspeed() -> Check:
    """Which DeepSpeed ops would be compiled on a compute node: a classic failure ("Error building
    extension 'fused_adam'": no nvcc, no writable cache, a read-only image). Our zero2/zero3 runs
    use torch's AdamW and need none; zero3_offload needs cpu_adam."""
    if importlib.util.find_spec("deepspeed") is None:
        return Check(
            "deepspeed", "info", "not installed (not needed: no JIT-built ops; AdamW is torch's fused one)"
        )
    try:
        from deepspeed.git_version_info import installed_ops, version
    except Exception as err:  # a broken install is a finding, not a crash
        return Check("deepspeed", "fail", f"cannot be imported: {type(err).__name__}: {err}")
    if not installed_ops.get("cpu_adam"):
        return Check(
            "deepspeed",
            "info",
            f"{version}: zero2/zero3 need no compiled op (torch's AdamW); zero3_offload would JIT-build "
            "cpu_adam with g++ on first use (TORCH_EXTENSIONS_DIR must be writable)",
        )
    built = sorted(op for op, ok in installed_ops.items() if ok)
    return Check("deepspeed", "ok", f"{version}, prebuilt ops: {', '.join(built)}")


def check_deepspeed_ops() -> list[Check]:
    """Each DeepSpeed op an engine needs (core.engines.DEEPSPEED_OPS) loads without compiling: from
    DeepSpeed itself when prebuilt (the image: DS_BUILD_CPU_ADAM=1), else from an earlier JIT build
    in TORCH_EXTENSIONS_DIR (scripts/build_deepspeed_ops.py). One that would compile at first use
    is information on a machine with a compiler, and a failure where none is (a lean image)."""
    if importlib.util.find_spec("deepspeed") is None:
        return []
    from peftbench.core.engines import DEEPSPEED_OPS

    checks = []
    for engine, ops in DEEPSPEED_OPS.items():
        checks += [_op_loads(op, engine) for op in ops]
    return checks


def _op_loads(op: str, engine: str) -> Check:
    import shutil

    from deepspeed.git_version_info import installed_ops
    from deepspeed.ops.op_builder.all_ops import ALL_OPS

    builder = ALL_OPS[op]
    name = f"deepspeed op {op}"
    if installed_ops.get(op):
        try:
            importlib.import_module(builder.absolute_name())
        except Exception as err:
            return Check(name, "fail", f"prebuilt but does not import: {type(err).__name__}: {err}")
        return Check(name, "ok", f"prebuilt in DeepSpeed, imports without compiling ({engine})")
    from torch.utils.cpp_extension import _get_build_directory

    library = Path(_get_build_directory(builder.name, verbose=False)) / f"{builder.name}.so"
    if library.is_file():
        try:
            spec = importlib.util.spec_from_file_location(builder.name, library)
            assert spec is not None and spec.loader is not None
            spec.loader.exec_module(importlib.util.module_from_spec(spec))
        except Exception as err:
            return Check(name, "fail", f"{library} does not load: {type(err).__name__}: {err}")
        return Check(name, "ok", f"built once in {library.parent}, loads without compiling ({engine})")
    compiler = shutil.which("c++") or shutil.which("g++")
    return Check(
        name,
        "info" if compiler else "fail",
        f"neither prebuilt nor built: {engine} would compile it at first use"
        + (f" with {compiler}" if compiler else ", and there is no compiler here")
        + " — run scripts/build_deepspeed_ops.py (or build the image with DS_BUILD_CPU_ADAM=1)",
    )


def check_torch_extensions_dir() -> Check:
    path = os.environ.get("TORCH_EXTENSIONS_DIR")
    if not path:
        return Check(
            "torch extensions", "info", "TORCH_EXTENSIONS_DIR unset (JIT ops would build in ~/.cache)"
        )
    ok = _writable(Path(path))
    detail = (
        f"{path} {'is writable' if ok else 'is NOT writable: set TORCH_EXTENSIONS_DIR to a writable folder'}"
    )
    return Check("torch extensions", "ok" if ok else "fail", detail)


def check_hf_cache(runs: list[RunSpec] | None) -> list[Check]:
    """Where the HF cache is, whether this process is offline, and whether the sweep's hub items are in it."""
    import datasets
    from huggingface_hub import constants

    from peftbench.tools.fetch import hub_needs, missing_from_cache, missing_local_data, offline_variables

    offline = offline_variables()
    mode = f"offline ({', '.join(offline)})" if offline else "online (hub downloads allowed)"
    cache = datasets.config.HF_DATASETS_CACHE
    where = f"HF_HOME {constants.HF_HOME}; hub {constants.HF_HUB_CACHE}; datasets {cache}"
    checks = [Check("hf cache", "info", f"{where}; {mode}")]
    if runs is None:
        return checks
    items = hub_needs(runs)
    missing = missing_from_cache(items)
    checks += [
        Check("hf cache", "fail", f"{m} (run `peftbench fetch` on a node with internet)") for m in missing
    ]
    by_hand = missing_local_data(runs)
    checks += [Check("local data", "fail", str(need)) for need in by_hand]
    if not missing and not by_hand:
        detail = (
            f"all {len(items)} hub item(s) the sweep needs are cached"
            if items
            else "the sweep needs nothing from the hub"
        )
        checks.append(Check("sweep data", "ok", detail))
    return checks


def check_runs_dir(runs_dir: Path) -> Check:
    if _writable(runs_dir):
        return Check("run folder", "ok", f"{runs_dir} is writable")
    return Check("run folder", "fail", f"{runs_dir} is not writable (--runs-dir, or the profile's runs_dir)")


def _writable(folder: Path) -> bool:
    """Whether files can be created in `folder`, or in the folder that would hold it."""
    if folder.is_dir():
        try:
            with tempfile.NamedTemporaryFile(dir=folder, prefix=".doctor-"):
                return True
        except OSError:
            return False
    parent = next((p for p in folder.absolute().parents if p.exists()), None)
    if parent is None or not parent.is_dir():
        return False
    try:
        os.rmdir(tempfile.mkdtemp(dir=parent, prefix=".doctor-"))
    except OSError:
        return False
    return True


def check_container(container: ContainerSettings) -> list[Check]:
    """The profile's image exists, and Python, submitit, cloudpickle and peftbench match inside it."""
    from peftbench.plan.schema import FILL_ME

    image = Path(container.image)
    if os.environ.get("APPTAINER_CONTAINER"):
        return [Check("image", "info", f"running inside {os.environ['APPTAINER_CONTAINER']}: not nesting")]
    if FILL_ME in container.image:
        detail = (
            "container.image is still FILL_ME in the profile: set it to where this site's shared image is "
            "(docs/clusters.md); not checked until then"
        )
        return [Check("image", "fail", detail)]
    if not image.is_file() or not os.access(image, os.R_OK):
        return [Check("image", "fail", f"no readable image at {image} (make sif, then copy it there)")]
    from peftbench.launch.container import APPTAINER, apptainer_exec_args

    if shutil.which(APPTAINER) is None:
        return [Check("image", "info", f"{image} exists; `{APPTAINER}` not on PATH, versions not compared")]
    command = [*apptainer_exec_args(container), "python", "-c", PROBE]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=600)
    except (OSError, subprocess.SubprocessError) as err:
        return [Check("image", "fail", f"could not run {APPTAINER}: {err}")]
    inside = _probe_answer(done.stdout)
    if inside is None:
        tail = " ".join(done.stderr.strip().splitlines()[-3:]) or f"exit code {done.returncode}"
        return [Check("image", "fail", f"could not run Python in {image}: {tail}")]
    return _compare_inside_outside(image, inside)


def _probe_answer(stdout: str) -> dict[str, str | None] | None:
    """The PROBE's JSON (its last line of output), or None."""
    lines = stdout.strip().splitlines()
    try:
        answer = json.loads(lines[-1]) if lines else None
    except ValueError:
        return None
    return answer if isinstance(answer, dict) else None


def _compare_inside_outside(image: Path, inside: dict[str, str | None]) -> list[Check]:
    outside = {"python": platform.python_version(), **{n: _installed(n) for n in COMPARED[1:]}}
    wrong = [
        f"{name} {outside[name]} here, {inside.get(name)} in the image"
        for name in COMPARED
        if _comparable(name, outside[name]) != _comparable(name, inside.get(name))
    ]
    if wrong:
        return [Check("image", "fail", f"{image}: {'; '.join(wrong)} — install both from the same lock")]
    same = ", ".join(f"{n} {inside.get(n)}" for n in COMPARED)
    return [Check("image", "ok", f"{image}: the same {same} inside and outside")]


def _comparable(name: str, version: str | None) -> str | None:
    """What must match: Python's minor version, torch without its build tag, others exactly."""
    if version is None:
        return None
    if name == "python":
        return ".".join(version.split(".")[:2])
    if name == "torch":
        return Version(version).public
    return version


def failures(checks: list[Check]) -> list[Check]:
    return [c for c in checks if c.status == "fail"]


SYMBOLS = {"ok": ("✓", "green"), "info": ("·", "dim"), "fail": ("✗", "red")}


def print_report(checks: list[Check], console: Console) -> int:
    """Every check, one line each, then the failures again as a list; returns how many failed."""
    from rich.text import Text

    for check in checks:
        symbol, style = SYMBOLS[check.status]
        console.print(Text.assemble((symbol, style), f" {check.name:<17} ", check.detail), soft_wrap=True)
    failed = failures(checks)
    if failed:
        console.print(Text(f"\n{len(failed)} problem(s):", style="red"))
        for check in failed:
            console.print(f"  - {check}", markup=False, highlight=False, soft_wrap=True)
    else:
        console.print(Text(f"\nNo problems ({len(checks)} checks).", style="green"))
    return len(failed)
