"""Does the cluster profile's image match this environment? Python, torch, submitit, cloudpickle and
peftbench are asked inside it (`apptainer exec ... python -c PROBE`) and compared with the ones here.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
from pathlib import Path

from packaging.version import Version

from peftbench.plan.schema import ContainerSettings
from peftbench.tools.check import Check, installed_version

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


def check_container(container: ContainerSettings) -> list[Check]:
    """The profile's image exists, and Python, submitit, cloudpickle and peftbench match inside it."""
    unusable = _image_unusable(container)
    if unusable is not None:
        return [unusable]
    from peftbench.launch.container import APPTAINER, apptainer_exec_args

    image = Path(container.image)
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


def _image_unusable(container: ContainerSettings) -> Check | None:
    """Why the image's versions cannot be compared here (nested, unset, unreadable, no apptainer), or None."""
    from peftbench.launch.container import APPTAINER
    from peftbench.plan.schema import FILL_ME

    image = Path(container.image)
    if os.environ.get("APPTAINER_CONTAINER"):
        return Check("image", "info", f"running inside {os.environ['APPTAINER_CONTAINER']}: not nesting")
    if FILL_ME in container.image:
        detail = (
            "container.image is still FILL_ME in the profile: set it to where this site's shared image is "
            "(docs/clusters.md); not checked until then"
        )
        return Check("image", "fail", detail)
    if not image.exists() or not os.access(image, os.R_OK):  # a .sif, or a sandbox folder
        return Check("image", "fail", f"no readable image at {image} (make sif, then copy it there)")
    if shutil.which(APPTAINER) is None:
        return Check("image", "info", f"{image} exists; `{APPTAINER}` not on PATH, versions not compared")
    return None


def _probe_answer(stdout: str) -> dict[str, str | None] | None:
    """The PROBE's JSON (its last line of output), or None."""
    lines = stdout.strip().splitlines()
    try:
        answer = json.loads(lines[-1]) if lines else None
    except ValueError:
        return None
    return answer if isinstance(answer, dict) else None


def _compare_inside_outside(image: Path, inside: dict[str, str | None]) -> list[Check]:
    outside = {"python": platform.python_version(), **{n: installed_version(n) for n in COMPARED[1:]}}
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
