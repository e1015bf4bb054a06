"""The `apptainer exec` line that runs a task's Python inside the cluster profile's image.

The Slurm launcher hands `container_python(profile)` to submitit as its `python=` parameter, and
submitit writes it unquoted into the sbatch script (`srun ... <python> -u -m submitit...`). So the
line is shell words: every part is quoted here, and nothing else in it is interpreted.

The image is hashed here, on the submitting node, once per sweep (and remembered by path, mtime
and size, so `status`/`resubmit` do not read it again); path and sha256 go into the container as
`PEFTBENCH_IMAGE`/`PEFTBENCH_IMAGE_SHA256`, where `provenance` puts them into every result.
"""

from __future__ import annotations

import shlex
from pathlib import Path

from peftbench.core.image import IMAGE_ENV, IMAGE_SHA256_ENV, image_sha256
from peftbench.plan.schema import ClusterProfile, ContainerSettings

APPTAINER = "apptainer"


def container_python(
    profile: ClusterProfile, python: str = "python", *, image_digest: str | None = None
) -> str | None:
    """`apptainer exec --nv --bind ... --env ... IMAGE python`, or None when the profile has no image.

    `image_digest` is the image's sha256 when the caller already has it; by default the image is
    hashed (once, see `provenance.image_sha256`) when it exists on this machine, else left out.
    """
    container = profile.container
    if container is None:
        return None
    if image_digest is None and Path(container.image).exists():  # a .sif, or a sandbox folder
        image_digest = image_sha256(Path(container.image))
    return shlex.join(apptainer_exec_args(container, image_digest) + shlex.split(python))


def apptainer_exec_args(container: ContainerSettings, image_digest: str | None = None) -> list[str]:
    """The `apptainer exec` words up to and including the image (the command follows)."""
    args = [APPTAINER, "exec"]
    if container.nv:
        args.append("--nv")
    for bind in container.binds:
        args += ["--bind", bind]
    env = {**container.env, IMAGE_ENV: container.image}
    if image_digest is not None:
        env[IMAGE_SHA256_ENV] = image_digest
    for key, value in env.items():
        args += ["--env", env_flag_value(key, value)]
    args.append(container.image)
    return args


def env_flag_value(key: str, value: str) -> str:
    """One `--env` value, as Apptainer (pflag's StringToString) will parse it back.

    A pair with one `=` is taken whole, minus quotes at either end; one with several is read as
    CSV (so `A=1,B=2` is two variables), so such a pair holding a comma or a quote is CSV-quoted.
    """
    pair = f"{key}={value}"
    if pair.count("=") > 1:
        return '"' + pair.replace('"', '""') + '"' if "," in pair or '"' in pair else pair
    if value.endswith('"'):
        raise ValueError(f"container.env.{key}: Apptainer's --env would drop the closing quote of {value!r}")
    return pair
