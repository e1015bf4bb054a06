"""`peftbench doctor`: is this environment, inside or outside the image, fit to run a sweep?

Every check gives `ok`, `fail`, or `info` — a fact that is not a problem here (no GPU on a CPU
machine, DeepSpeed not installed). The command prints them all and exits non-zero listing the
failures. Nothing here downloads, builds or writes outside a temporary file in the run folder.
"""

from __future__ import annotations

import importlib.util
import os
import platform
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from packaging.version import Version
from rich.console import Console

from peftbench import __version__
from peftbench.core.checkout import lock_path
from peftbench.core.spec import RunSpec
from peftbench.plan.schema import ClusterProfile
from peftbench.tools.check import Check, installed_version
from peftbench.tools.image_check import check_container
from peftbench.tools.lockfile import TORCH_PIN_FILE, Lock, read_lock, read_torch_pin


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
    if not lock.is_file():
        return [Check("lock", "fail", f"no requirements.lock at {lock} (set PEFTBENCH_LOCK to its path)")]
    pins = read_lock(lock)
    return [_python_check(pins), _packages_check(pins), _submitit_check(pins)]


def _python_check(lock: Lock) -> Check:
    python = platform.python_version()
    if lock.python in (None, ".".join(python.split(".")[:2])):
        return Check("python", "ok", f"{python} (the lock was made with {lock.python})")
    return Check("python", "fail", f"{python}, but {lock.path.name} was made with Python {lock.python}")


def _packages_check(lock: Lock) -> Check:
    wrong = [
        f"{name} {installed or 'not installed'} (lock: {pinned})"
        for name, pinned in sorted(lock.pins.items())
        if (installed := installed_version(name)) != pinned
    ]
    if not wrong:
        return Check("packages", "ok", f"all {len(lock.pins)} match {lock.path}")
    fix = f"pip install --require-hashes --no-deps -r {lock.path}"
    return Check("packages", "fail", f"differ from {lock.path}: {'; '.join(wrong)} — fix: {fix}")


def _submitit_check(lock: Lock) -> Check:
    submitit, locked = installed_version("submitit"), lock.pins.get("submitit")
    if submitit == locked:
        return Check("submitit", "ok", f"{submitit}, as locked (so the same inside and outside the image)")
    return Check("submitit", "fail", f"{submitit}, but the lock pins {locked}")


def check_torch(pin_file: Path) -> Check:
    """torch is outside the hashed lock: its version must still be requirements-torch.txt's."""
    installed = installed_version("torch")
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
    cuda = Check("cuda", "ok", f"CUDA {torch.version.cuda}, {len(names)} GPU(s): {', '.join(names)}")
    return [cuda, _nccl_check(), _bf16_check()]


def _nccl_check() -> Check:
    import torch

    try:
        nccl = ".".join(str(part) for part in torch.cuda.nccl.version())
    except (AttributeError, RuntimeError) as err:
        return Check("nccl", "fail", f"NCCL unavailable in this torch build: {err}")
    return Check("nccl", "ok", f"NCCL {nccl} (multi-GPU and multi-node runs)")


def _bf16_check() -> Check:
    import torch

    if torch.cuda.is_bf16_supported():
        return Check("bf16", "ok", "supported: precision auto trains in bf16")
    return Check("bf16", "info", "not supported: precision auto is fp32")


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
    """Whether DeepSpeed's `op` loads without compiling: prebuilt, built once (JIT), or neither."""
    from deepspeed.git_version_info import installed_ops
    from deepspeed.ops.op_builder.all_ops import ALL_OPS
    from torch.utils.cpp_extension import _get_build_directory

    builder, name = ALL_OPS[op], f"deepspeed op {op}"
    if installed_ops.get(op):
        return _prebuilt_op(name, builder.absolute_name(), engine)
    library = Path(_get_build_directory(builder.name, verbose=False)) / f"{builder.name}.so"
    if library.is_file():
        return _built_op(name, builder.name, library, engine)
    return _op_to_compile(name, engine)


def _prebuilt_op(name: str, module: str, engine: str) -> Check:
    try:
        importlib.import_module(module)
    except Exception as err:
        return Check(name, "fail", f"prebuilt but does not import: {type(err).__name__}: {err}")
    return Check(name, "ok", f"prebuilt in DeepSpeed, imports without compiling ({engine})")


def _built_op(name: str, module: str, library: Path, engine: str) -> Check:
    try:
        spec = importlib.util.spec_from_file_location(module, library)
        assert spec is not None and spec.loader is not None
        spec.loader.exec_module(importlib.util.module_from_spec(spec))
    except Exception as err:
        return Check(name, "fail", f"{library} does not load: {type(err).__name__}: {err}")
    return Check(name, "ok", f"built once in {library.parent}, loads without compiling ({engine})")


def _op_to_compile(name: str, engine: str) -> Check:
    compiler = shutil.which("c++") or shutil.which("g++")
    detail = (
        f"neither prebuilt nor built: {engine} would compile it at first use"
        + (f" with {compiler}" if compiler else ", and there is no compiler here")
        + " — run scripts/build_deepspeed_ops.py (or build the image with DS_BUILD_CPU_ADAM=1)"
    )
    return Check(name, "info" if compiler else "fail", detail)


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

    from peftbench.tools.fetch import offline_variables

    offline = offline_variables()
    mode = f"offline ({', '.join(offline)})" if offline else "online (hub downloads allowed)"
    cache = datasets.config.HF_DATASETS_CACHE
    where = f"HF_HOME {constants.HF_HOME}; hub {constants.HF_HUB_CACHE}; datasets {cache}"
    checks = [Check("hf cache", "info", f"{where}; {mode}")]
    if runs is None:
        return checks
    return [*checks, *_sweep_data_checks(runs)]


def _sweep_data_checks(runs: list[RunSpec]) -> list[Check]:
    """A failure per hub item missing from the cache and per local data folder missing, else one ok."""
    from peftbench.tools.fetch import hub_needs, missing_from_cache, missing_local_data

    items = hub_needs(runs)
    missing = missing_from_cache(items)
    checks = [
        Check("hf cache", "fail", f"{m} (run `peftbench fetch` on a node with internet)") for m in missing
    ]
    checks += [Check("local data", "fail", str(need)) for need in missing_local_data(runs)]
    checks += _study_file_checks(runs)
    if any(check.status == "fail" for check in checks):
        return checks
    detail = (
        f"all {len(items)} hub item(s) the sweep needs are cached"
        if items
        else "the sweep needs nothing from the hub"
    )
    return [*checks, Check("sweep data", "ok", detail)]


def _study_file_checks(runs: list[RunSpec]) -> list[Check]:
    """Each set of study files from GitHub the sweep reads (BELLE's evaluation set): present or not."""
    from peftbench.tools.pinned_files import study_needs

    fix = "run `peftbench fetch` where GitHub is reachable"
    return [
        Check("study files", "fail", f"{need}: {', '.join(absent)} missing ({fix})")
        if (absent := need.absent())
        else Check("study files", "ok", f"{need}: present")
        for need in study_needs(runs)
    ]


def check_runs_dir(runs_dir: Path) -> Check:
    if _writable(runs_dir):
        return Check("run folder", "ok", f"{runs_dir} is writable")
    return Check("run folder", "fail", f"{runs_dir} is not writable (--runs-dir, or the profile's runs_dir)")


def _writable(folder: Path) -> bool:
    """Whether files can be created in `folder`, or in the folder that would hold it."""
    if folder.is_dir():
        return _succeeds(lambda: tempfile.NamedTemporaryFile(dir=folder, prefix=".doctor-").close())
    parent = next((p for p in folder.absolute().parents if p.exists()), None)
    if parent is None or not parent.is_dir():
        return False
    return _succeeds(lambda: os.rmdir(tempfile.mkdtemp(dir=parent, prefix=".doctor-")))


def _succeeds(attempt: Callable[[], object]) -> bool:
    """Whether `attempt` runs without an OSError."""
    try:
        attempt()
    except OSError:
        return False
    return True


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
