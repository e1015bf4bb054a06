"""Study files kept in a public GitHub repository at a pinned commit: which a sweep needs, whether
they are here, and fetching them.

Some studies' evaluation data is not on the HF hub but in the study's own repository: BELLE's
1,000-prompt evaluation set and its per-category judge prompts (LianjiaTech/BELLE, `eval/`).
`peftbench fetch` downloads each file at the study's commit from raw.githubusercontent.com (or
from the mirror `PEFTBENCH_GITHUB_RAW` names, laid out as `<base>/<owner>/<repo>/<commit>/<path>`),
refuses any whose git blob id is not the pinned one, converts them into the layout the catalog
reads and writes that folder's files all or none. `HF_HUB_OFFLINE` does not stop it (that variable
is about the hub); a machine without network fails at the first file, in one line.

A sweep needs a set when one of its tasks reads a local folder (`hub:` of `source` or
`test_source`) named as the set's folder (`belle_eval`, the catalog's `data/belle_eval`): the
files are written in that folder, wherever the sweep puts it (a relative path is relative to where
peftbench runs, as when the runs read it).
"""

from __future__ import annotations

import os
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from peftbench.core.errors import PeftbenchError
from peftbench.core.files import write_paths_atomic
from peftbench.core.spec import RunSpec
from peftbench.tools import belle_eval

RAW_BASE_VARIABLE = "PEFTBENCH_GITHUB_RAW"
DEFAULT_RAW_BASE = "https://raw.githubusercontent.com"


@dataclass(frozen=True)
class PinnedFile:
    """One file of a public GitHub repository at one commit, and the git blob id it must have."""

    repository: str
    commit: str
    path: str
    blob: str

    def url(self, base: str) -> str:
        return f"{base.rstrip('/')}/{self.repository}/{self.commit}/{self.path}"

    def __str__(self) -> str:
        return f"{self.path} ({self.repository} at {self.commit[:8]})"


@dataclass(frozen=True)
class StudyFiles:
    """Files of a study fetched together and converted into one folder the catalog reads."""

    title: str
    folder_name: str
    upstream: tuple[PinnedFile, ...]
    outputs: tuple[str, ...]
    convert: Callable[[Mapping[str, bytes]], dict[str, str]]
    """upstream path -> its bytes, to output file name -> its text."""


BELLE_EVAL = StudyFiles(
    title="BELLE's evaluation set and judge prompts",
    folder_name="belle_eval",
    upstream=(
        PinnedFile(
            belle_eval.REPOSITORY, belle_eval.EVAL_SET_COMMIT, belle_eval.EVAL_SET, belle_eval.EVAL_SET_BLOB
        ),
        PinnedFile(
            belle_eval.REPOSITORY,
            belle_eval.EVAL_PROMPTS_COMMIT,
            belle_eval.EVAL_PROMPTS,
            belle_eval.EVAL_PROMPTS_BLOB,
        ),
    ),
    outputs=(belle_eval.TEST_FILE, belle_eval.PROMPTS_FILE),
    convert=belle_eval.catalog_layout,
)
STUDY_FILES = (BELLE_EVAL,)


@dataclass(frozen=True)
class StudyNeed:
    """A set of study files a sweep needs, the folder it goes in and the tasks reading it."""

    files: StudyFiles
    folder: Path
    used_by: tuple[str, ...]

    def absent(self) -> list[str]:
        return [name for name in self.files.outputs if not (self.folder / name).is_file()]

    def __str__(self) -> str:
        return f"{self.files.title} in {self.folder} (used by {', '.join(self.used_by)})"


class StudyFilesError(PeftbenchError):
    """Study files missing or refused; one line per problem."""


def raw_base() -> str:
    """Where raw files are downloaded from: GitHub's raw host, or a mirror of its layout."""
    return os.environ.get(RAW_BASE_VARIABLE) or DEFAULT_RAW_BASE


def study_needs(runs: list[RunSpec], known: tuple[StudyFiles, ...] | None = None) -> list[StudyNeed]:
    """Every known set of study files (STUDY_FILES by default) the runs read, once per folder, in
    sweep order."""
    by_name = {files.folder_name: files for files in known or STUDY_FILES}
    users: dict[tuple[str, str], list[str]] = {}
    for run in runs:
        for source in (run.task.source, run.task.test_source):
            folder = source.hub if source is not None else None
            if folder is not None and Path(folder).name in by_name:
                users.setdefault((Path(folder).name, folder), []).append(f"task {run.task.name}")
    return [
        StudyNeed(by_name[name], Path(folder).expanduser(), tuple(dict.fromkeys(names)))
        for (name, folder), names in users.items()
    ]


def study_folder(hub: str) -> bool:
    """Whether a task's `hub:` value is a folder `peftbench fetch` fills with study files."""
    return Path(hub).name in {files.folder_name for files in STUDY_FILES}


def require_study_files(needs: list[StudyNeed], sweep: str = "SWEEP") -> None:
    """Raise StudyFilesError naming each set whose files are not all in its folder (no network)."""
    lines = [
        f"{need}: {', '.join(need.absent())} missing; run `peftbench fetch {sweep}` where GitHub "
        f"(or {RAW_BASE_VARIABLE}) is reachable"
        for need in needs
        if need.absent()
    ]
    if lines:
        raise StudyFilesError("\n".join(lines))


def fetch_study_files(
    needs: list[StudyNeed], report: Callable[[str], None] = print, timeout: float = 30.0
) -> list[StudyNeed]:
    """Download, check and convert every set not yet complete in its folder; return those written.
    A set whose files cannot all be downloaded and checked writes nothing; every failure is named
    at the end in one StudyFilesError, one line each."""
    fetched, failures = [], []
    for need in needs:
        if not need.absent():
            report(f"{need.files.title}: present in {need.folder}")
            continue
        report(f"fetching {need.files.title} into {need.folder}")
        try:
            write_study_files(need, raw_base(), timeout)
        except PeftbenchError as err:  # refused, unreachable, or a full disk (CannotWrite)
            failures.append(str(err))
            continue
        fetched.append(need)
    if failures:
        raise StudyFilesError("\n".join(failures))
    return fetched


def write_study_files(need: StudyNeed, base: str, timeout: float) -> None:
    """All upstream files downloaded and checked first, then every output written at once."""
    upstream = {pinned.path: download(pinned, base, timeout, need.folder) for pinned in need.files.upstream}
    try:
        texts = need.files.convert(upstream)
    except PeftbenchError as err:
        raise StudyFilesError(f"{need.files.title}: {err}; nothing written to {need.folder}") from None
    write_paths_atomic({need.folder / name: _writer(text) for name, text in texts.items()})


def download(pinned: PinnedFile, base: str, timeout: float, folder: Path) -> bytes:
    """The file's bytes, refused unless their git blob id is the pinned one."""
    url = pinned.url(base)
    try:
        with urllib.request.urlopen(url, timeout=timeout) as answer:
            data = answer.read()
    except (OSError, ValueError) as err:  # URLError, HTTPError, timeouts, a malformed base
        raise StudyFilesError(
            f"cannot download {pinned} from {url} ({_reason(err)}); nothing written to {folder}"
        ) from None
    got = belle_eval.git_blob_id(data)
    if got != pinned.blob:
        raise StudyFilesError(
            f"{pinned} from {url}: git blob {got}, expected {pinned.blob}; nothing written to {folder}"
        )
    return data


def _reason(err: BaseException) -> str:
    if isinstance(err, urllib.error.HTTPError):
        return f"HTTP {err.code} {err.reason}"
    reason = getattr(err, "reason", None) or err
    return f"{type(reason).__name__}: {str(reason).splitlines()[0] if str(reason) else ''}".rstrip(": ")


def _writer(text: str) -> Callable[[Path], None]:
    return lambda path: path.write_text(text, encoding="utf-8")
