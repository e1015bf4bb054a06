"""What a sweep needs from the Hugging Face hub, whether the HF cache has it, and fetching it.

Compute nodes run offline (`HF_HUB_OFFLINE=1`, the image's default), so every hub model (weights,
config, tokenizer) and hub dataset a sweep names must already be in the shared HF cache (`HF_HOME`).
`peftbench fetch SWEEP` fills it on a machine with internet; `peftbench doctor --sweep` and
`fetch --check` only look. Bundled data, local files and folders, `package:` models and models
another run trains (`run:`) are present by definition. `fetch` also brings the study files the
sweep reads from a public GitHub repository (BELLE's evaluation set: tools/pinned_files.py).

"In the cache" means what an offline run will read:
- a model: the snapshot of its default revision holds config.json, a tokenizer file and weights
  (every shard, when the weights are sharded);
- a dataset: a prepared copy of its configuration in the datasets cache (`HF_DATASETS_CACHE`),
  which is what `datasets.load_dataset` falls back to offline.
"""

from __future__ import annotations

import json
import os
import shlex
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, TypeGuard

from peftbench.core.errors import PeftbenchError
from peftbench.core.spec import RUN_SOURCE, RunSpec
from peftbench.tools.pinned_files import (
    StudyFilesError,
    fetch_study_files,
    require_study_files,
    study_folder,
    study_needs,
)

WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")


WEIGHT_INDEXES = ("model.safetensors.index.json", "pytorch_model.bin.index.json")


TOKENIZER_FILES = ("tokenizer.json", "vocab.txt", "vocab.json", "spiece.model", "sentencepiece.bpe.model")


# Formats no run reads: other frameworks' weights and exports.
NEVER_FETCHED = (
    "*.h5",
    "*.msgpack",
    "*.onnx",
    "*.ot",
    "*.tflite",
    "*.gguf",
    "onnx/*",
    "openvino/*",
    "coreml/*",
)


@dataclass(frozen=True)
class HubItem:
    """One model or dataset configuration on the hub, and the sweep entries that use it."""

    kind: Literal["model", "dataset"]
    repo_id: str
    config: str | None = None
    used_by: tuple[str, ...] = field(default=(), compare=False)

    def __str__(self) -> str:
        config = f" (config {self.config})" if self.config else ""
        users = f" — used by {', '.join(self.used_by)}" if self.used_by else ""
        return f"{self.kind} {self.repo_id}{config}{users}"


@dataclass(frozen=True)
class Missing:
    item: HubItem
    reason: str

    def __str__(self) -> str:
        return f"{self.item}: {self.reason}"


class FetchError(PeftbenchError):
    """Some items could not be fetched; `missing` names each with why."""

    def __init__(self, missing: list[Missing], hint: str = ""):
        self.missing = missing
        lines = [f"{len(missing)} item(s) the sweep needs are not in the HF cache ({hf_home()}):"]
        lines += [f"  - {m}" for m in missing]
        super().__init__("\n".join(lines + ([hint] if hint else [])))


def hf_home() -> str:
    from huggingface_hub import constants

    return constants.HF_HOME


def hub_needs(runs: list[RunSpec]) -> list[HubItem]:
    """Every hub model and hub dataset configuration the runs use, each once, in sweep order."""
    users: dict[HubItem, list[str]] = {}
    for run in runs:
        source = run.model.source
        if not _is_local_model(source):
            users.setdefault(HubItem("model", source), []).append(f"model {run.model.name}")
        hub = run.task.source.hub
        if _on_the_hub(hub):
            users.setdefault(HubItem("dataset", hub, run.task.source.config), []).append(
                f"task {run.task.name}"
            )
    return [
        HubItem(item.kind, item.repo_id, item.config, tuple(dict.fromkeys(names)))
        for item, names in users.items()
    ]


def _on_the_hub(hub: str | None) -> TypeGuard[str]:
    """Whether a task's `hub:` value names a hub dataset: neither a local path nor absent."""
    return hub is not None and not Path(hub).exists() and not is_local_folder(hub)


def is_local_folder(hub: str) -> bool:
    """Whether a task's `hub:` value can only be a local folder: a hub id is `name` or `owner/name`."""
    return hub.startswith(("/", "./", "../", "~")) or hub.count("/") > 1


@dataclass(frozen=True)
class LocalData:
    """A data folder a sweep reads that is not on the hub (e.g. Slovene SuperGLUE, from CLARIN.SI)."""

    path: str
    used_by: tuple[str, ...]

    def __str__(self) -> str:
        return (
            f"local data folder {self.path} (used by {', '.join(self.used_by)}) is missing. It is not on "
            "the hub, so `peftbench fetch` cannot get it: download it by hand and unpack it there "
            "(docs/tasks.md says from where)."
        )


def missing_local_data(runs: list[RunSpec]) -> list[LocalData]:
    """Local data folders the runs name that do not exist here, each once, with the tasks using them."""
    users: dict[str, list[str]] = {}
    for run in runs:
        hub = run.task.source.hub
        if _missing_folder(hub):
            users.setdefault(hub, []).append(f"task {run.task.name}")
    return [LocalData(path, tuple(dict.fromkeys(names))) for path, names in users.items()]


def _missing_folder(hub: str | None) -> TypeGuard[str]:
    """Whether a task's `hub:` value is a local folder that does not exist here and that fetch
    cannot fill (study files from GitHub, tools/pinned_files.py, it can)."""
    return (
        hub is not None
        and is_local_folder(hub)
        and not Path(hub).expanduser().exists()
        and not study_folder(hub)
    )


def _is_local_model(source: str) -> bool:
    """Whether a model is not a hub id: a package's, a folder, or another run's (`run:`)."""
    return source.startswith(("package:", RUN_SOURCE, "/", "./", "../", "~")) or Path(source).exists()


def missing_from_cache(
    items: list[HubItem], hub_cache: str | None = None, datasets_cache: str | None = None
) -> list[Missing]:
    """The items an offline run would not find, each with the reason. Never touches the network."""
    out = []
    for item in items:
        if item.kind == "model":
            reason = model_missing(item.repo_id, hub_cache)
        else:
            reason = dataset_missing(item.repo_id, item.config, datasets_cache)
        if reason is not None:
            out.append(Missing(item, reason))
    return out


def model_missing(repo_id: str, hub_cache: str | None = None) -> str | None:
    """Why the cached snapshot of a hub model would not load offline, or None when it would."""
    from huggingface_hub import try_to_load_from_cache

    config = try_to_load_from_cache(repo_id, "config.json", cache_dir=hub_cache)
    if not isinstance(config, str):
        return "not in the cache"
    folder = Path(config).parent
    return _tokenizer_missing(folder) or _weights_missing(folder)


def _tokenizer_missing(folder: Path) -> str | None:
    if any((folder / name).is_file() for name in TOKENIZER_FILES) or any(folder.glob("*.model")):
        return None
    return f"no tokenizer file in {folder}"


def _weights_missing(folder: Path) -> str | None:
    """Why the snapshot's weights are incomplete: the shards its index names, else one weight file."""
    index = next((folder / name for name in WEIGHT_INDEXES if (folder / name).is_file()), None)
    if index is not None:
        shards = set(json.loads(index.read_text(encoding="utf-8"))["weight_map"].values())
        absent = sorted(s for s in shards if not (folder / s).is_file())
        return f"weight shards missing in {folder}: {', '.join(absent)}" if absent else None
    if any((folder / name).is_file() for name in WEIGHT_FILES):
        return None
    return f"no weights ({' or '.join(WEIGHT_FILES)}) in {folder}"


def dataset_missing(repo_id: str, config: str | None, datasets_cache: str | None = None) -> str | None:
    """Why `load_dataset(repo_id, config)` would not find a prepared copy offline, or None."""
    import datasets
    from datasets.naming import camelcase_to_snakecase

    cache = Path(datasets_cache or datasets.config.HF_DATASETS_CACHE).expanduser()
    *namespace, name = repo_id.split("/")
    root = cache / "___".join([*namespace, camelcase_to_snakecase(name)])
    if any(root.glob(f"{config or '*'}/*/*/dataset_info.json")):
        return None
    return "not prepared in the datasets cache" + (f" ({root})" if root.is_dir() else "")


OFFLINE_VARIABLES = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE")


def offline_variables() -> list[str]:
    """The variables that keep huggingface_hub or datasets offline in this process."""
    return [
        name for name in OFFLINE_VARIABLES if os.environ.get(name, "").upper() in {"1", "ON", "YES", "TRUE"}
    ]


def require_cached(items: list[HubItem], sweep: str = "SWEEP") -> None:
    """Raise FetchError naming every item an offline run would not find (no network)."""
    missing = missing_from_cache(items)
    if missing:
        command = shlex.join(["peftbench", "fetch", sweep])
        raise FetchError(missing, f"Run `{command}` on a machine with internet to fetch them.")


def fetch(items: list[HubItem], report: Callable[[str], None] = print, sweep: str = "SWEEP") -> list[HubItem]:
    """Download every item not yet cached; return those fetched. Raises FetchError naming each
    item still missing, without trying the network when `HF_HUB_OFFLINE` is set. `sweep` is the
    file as the user named it, for the command the message gives."""
    missing = missing_from_cache(items)
    if missing:
        _refuse_without_network(missing, sweep)
    fetched, failed = [], []
    for m in missing:
        report(f"fetching {m.item.kind} {m.item.repo_id}{f' ({m.item.config})' if m.item.config else ''}")
        try:
            download(m.item)
        except Exception as err:  # each failure is reported by name, never as a traceback
            failed.append(Missing(m.item, f"download failed: {_first_line(err)}"))
            continue
        fetched.append(m.item)
    if failed:
        raise FetchError(failed, "Check the network and the hub ids (a gated model needs `hf auth login`).")
    return fetched


def _refuse_without_network(missing: list[Missing], sweep: str) -> None:
    """Raise FetchError before any download when an offline variable is set or the hub is unreachable."""
    offline = offline_variables()
    if offline:
        turn_off = " ".join(f"{name}=0" for name in offline)
        raise FetchError(
            missing,
            f"{', '.join(offline)} set: nothing was downloaded. On a machine with internet run:\n"
            f"  {turn_off} {shlex.join(['peftbench', 'fetch', sweep])}",
        )
    unreachable = hub_unreachable()
    if unreachable is not None:
        raise FetchError(
            missing, f"Nothing was downloaded: {unreachable}. Run fetch where the hub is reachable."
        )


def hub_unreachable(timeout: float = 10.0) -> str | None:
    """Why the hub cannot be reached from here, or None. One quick request, so that a machine
    without network fails at once instead of after each download's retries."""
    import urllib.error
    import urllib.request

    from huggingface_hub import constants

    request = urllib.request.Request(constants.ENDPOINT, method="HEAD")
    try:
        with urllib.request.urlopen(request, timeout=timeout):
            pass
    except urllib.error.HTTPError:
        return None  # an answer, even an error status, means the hub is reachable
    except (OSError, ValueError) as err:
        return f"the hub at {constants.ENDPOINT} cannot be reached ({_first_line(err)})"
    return None


def download(item: HubItem) -> None:
    """One item into the HF cache: a model's snapshot (PyTorch weights only), or a prepared dataset."""
    if item.kind == "model":
        from huggingface_hub import HfApi, snapshot_download

        files = HfApi().list_repo_files(item.repo_id)
        snapshot_download(item.repo_id, ignore_patterns=ignored_files(files))
        reason = model_missing(item.repo_id)
        if reason is not None:
            raise FileNotFoundError(reason)
    else:
        from datasets import load_dataset

        load_dataset(item.repo_id, item.config)


def ignored_files(repo_files: list[str]) -> list[str]:
    """Patterns to skip: other frameworks' formats, and .bin weights when safetensors exist."""
    has_safetensors = any(f.endswith(".safetensors") and "/" not in f for f in repo_files)
    return [*NEVER_FETCHED, *(["*.bin", "*.pt", "*.pth"] if has_safetensors else [])]


def _first_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[0] if text else ''}".rstrip(": ")


@dataclass(frozen=True)
class SweepFetch:
    """What `peftbench fetch` found: a summary (None when hub items are still missing) and the
    problems, one paragraph each, for stderr."""

    summary: str | None
    problems: list[str]


def fetch_sweep(
    runs: list[RunSpec], sweep: str, check: bool = False, report: Callable[[str], None] = print
) -> SweepFetch:
    """Everything a sweep needs that fetch can get: its study files from GitHub, then its hub items;
    with `check`, only look. A failure of one does not stop the other."""
    items, studies = hub_needs(runs), study_needs(runs)
    problems = [str(need) for need in missing_local_data(runs)]  # fetch cannot get them, the user must
    try:
        if not check:
            fetch_study_files(studies, report)
        require_study_files(studies, sweep)
    except StudyFilesError as err:
        problems.append(str(err))
    try:
        fetched = [] if check else fetch(items, report=report, sweep=sweep)
        require_cached(items, sweep=sweep)
    except FetchError as err:
        return SweepFetch(None, [*problems, str(err)])
    summary = f"{len(items)} hub item(s) needed, {len(fetched)} fetched now; all in {hf_home()}."
    summary += "".join(f"\n{need.files.title}: in {need.folder}." for need in studies if not need.absent())
    return SweepFetch(summary, problems)
