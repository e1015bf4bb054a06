"""What only planning reads: the sweep file (SweepSpec) and the site (ClusterProfile, Slurm, image)."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field, PositiveFloat, PrivateAttr, field_validator, model_validator

from peftbench.core.errors import format_key
from peftbench.core.search_settings import SearchSettings
from peftbench.core.spec import (
    Averaging,
    ModelRef,
    PositiveInt,
    ResourceRequest,
    Seed,
    StrictModel,
    TaskSpec,
    Tracker,
    TrainingSettings,
)
from peftbench.plan.cost_settings import CostSettings

FILL_ME = "FILL_ME"  # marks a site fact the user must supply; submission refuses while any remain


def _one_word(value: str) -> str:
    """Names that become sbatch options or `module load` words: a space or line break would split them."""
    if not value or any(c.isspace() or not c.isprintable() for c in value) or value.startswith("-"):
        raise ValueError("A Slurm name is one word: no spaces, line breaks or leading '-'")
    return value


SlurmWord = Annotated[str, AfterValidator(_one_word)]


class GpuType(StrictModel):
    """How to ask one site for one kind of GPU node."""

    gres: SlurmWord | None = Field(
        None, description="--gres prefix, e.g. 'gpu:h100' (the count is appended)."
    )
    constraint: SlurmWord | None = Field(
        None, description="--constraint for this GPU type, if the site uses one."
    )
    partition: SlurmWord | None = Field(
        None, description="Partition for this GPU type (default: the profile's)."
    )
    gpus_per_node: PositiveInt = Field(description="GPUs in one node of this type.")
    memory_gb: PositiveInt | None = Field(
        None, description="Memory of one GPU in GB; the planner refuses runs that cannot fit it."
    )
    cpus_per_gpu: PositiveInt = Field(description="CPU cores to request per GPU.")
    mem_gb_per_gpu: PositiveInt = Field(description="Host memory (GB) to request per GPU.")


class SlurmSettings(StrictModel):
    """A Slurm site: where to submit and how to ask for resources."""

    partition: SlurmWord = Field(description="Default partition.")
    account: SlurmWord | None = Field(None, description="--account (project) to charge.")
    qos: SlurmWord | None = Field(None, description="--qos, if the site needs one.")
    max_time_min: PositiveInt = Field(description="The partition's time limit in minutes.")
    array_parallelism: PositiveInt = Field(32, description="At most this many tasks of one array at once.")
    max_num_timeout: int = Field(3, ge=0, description="Requeues after a timeout before giving up.")
    max_array_size: PositiveInt = Field(
        1000, description="Tasks per array at most (the site's MaxArraySize - 1); bigger groups are split."
    )
    gpu_types: dict[str, GpuType] = Field(default_factory=dict, description="GPU type name -> request.")
    default_gpu_type: str | None = Field(None, description="GPU type for runs that do not name one.")
    cpu_node_cpus: PositiveInt = Field(2, description="CPU cores of a node, for CPU-only runs.")
    cpu_node_mem_gb: PositiveInt = Field(4, description="Memory (GB) of a node, for CPU-only runs.")
    modules: list[SlurmWord] = Field(
        default_factory=list, description="`module load` these before each task."
    )
    setup: list[str] = Field(default_factory=list, description="Extra shell lines before each task.")
    additional_parameters: dict[str, Any] = Field(
        default_factory=dict, description="Other sbatch options, passed through submitit."
    )
    conf: str | None = Field(
        None,
        description="This cluster's slurm.conf, for a machine that reaches several clusters: exported as "
        "SLURM_CONF to sbatch, squeue, sacct, scancel and the jobs (default: the system's).",
    )

    @model_validator(mode="after")
    def _default_gpu_type_known(self) -> SlurmSettings:
        if self.default_gpu_type is not None and self.default_gpu_type not in self.gpu_types:
            raise ValueError(
                f"default_gpu_type {self.default_gpu_type!r} is not one of gpu_types {sorted(self.gpu_types)}"
            )
        return self


class ContainerSettings(StrictModel):
    """Run every task inside one Apptainer image."""

    image: str = Field(description="Path of the .sif on the cluster's shared file system.")
    binds: list[str] = Field(default_factory=list, description="--bind specs, e.g. /ceph/hf:/hf.")
    env: dict[str, str] = Field(default_factory=dict, description="Variables set inside the container.")
    nv: bool = Field(True, description="Pass --nv (NVIDIA GPUs into the container).")

    @field_validator("env")
    @classmethod
    def _env_survives_apptainer(cls, env: dict[str, str]) -> dict[str, str]:
        """Checked here, before submission: `--env` is where these become command-line words."""
        for key, value in env.items():
            if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key):
                raise ValueError(f"env key {key!r} is not a variable name (letters, digits, '_')")
            if "=" not in value and value.endswith('"'):
                raise ValueError(f"env.{key}: Apptainer's --env would drop the closing quote of {value!r}")
        return env


class ClusterProfile(StrictModel):
    """Where runs execute. `local` runs them one after another on this machine."""

    name: str = Field(description="Profile name (the file's stem).")
    launcher: Literal["local", "slurm"] = Field(description="Which launcher runs the sweep.")
    description: str = Field("", description="One line for humans.")
    runs_dir: str = Field("runs", description="Where run folders go, relative to the working directory.")
    quota_gb: PositiveFloat | None = Field(
        None,
        description="Disk quota (GB) of the runs folder's project: a sweep whose peak exceeds it is refused.",
    )
    slurm: SlurmSettings | None = Field(None, description="Scheduler settings (launcher: slurm).")
    container: ContainerSettings | None = Field(None, description="Run tasks in this Apptainer image.")
    cost: CostSettings = Field(
        default_factory=CostSettings, description="Peak speed, efficiency, power, allocation (docs/cost.md)."
    )
    site_hosts: list[str] = Field(
        default_factory=list,
        description="Hosts the compute nodes reach although offline (a vLLM judge on the site): an "
        "inside-the-run judge (where: run) must be on one of them.",
    )
    _file: str = PrivateAttr("<profile>")  # the YAML it was read from, for messages

    @property
    def file(self) -> str:
        return self._file

    @property
    def nodes_offline(self) -> bool:
        """The compute nodes reach no internet: the container's env sets HF_HUB_OFFLINE=1."""
        return self.container is not None and self.container.env.get("HF_HUB_OFFLINE") == "1"

    @model_validator(mode="after")
    def _slurm_settings_present(self) -> ClusterProfile:
        if self.launcher == "slurm" and self.slurm is None:
            raise ValueError("launcher 'slurm' needs a 'slurm:' section")
        return self

    def unfilled(self) -> list[str]:
        """Key paths still holding FILL_ME: site facts the user must supply before submitting."""
        return [key for key, value in _walk(self.model_dump()) if isinstance(value, str) and FILL_ME in value]


def _walk(data: Any, loc: tuple = ()) -> list[tuple[str, Any]]:
    if isinstance(data, dict):
        return [kv for k, v in data.items() for kv in _walk(v, (*loc, k))]
    if isinstance(data, list):
        return [kv for i, v in enumerate(data) for kv in _walk(v, (*loc, i))]
    return [(format_key(loc), data)]


MethodBlock = dict[str, Any]


SAFE_NAME = r"^[A-Za-z0-9_][A-Za-z0-9._-]*$"  # a folder name and an sbatch --job-name part, as written
MAX_RUNS = 10_000


class TaskSettings(StrictModel):
    """What a sweep may set on a task, catalog tasks included (the task's other fields stay as they are)."""

    averaging: Averaging | None = Field(
        None, description="Classification: binary, macro, micro or weighted precision/recall/F1."
    )
    max_train_choices: int | None = Field(
        None,
        ge=2,
        description="cloze_choice: training keeps at most this many candidates per example (memory).",
    )


class SweepSpec(StrictModel):
    """A sweep file: models × tasks × methods (each with its own grid) × seeds."""

    name: str = Field(
        description="Sweep name (default: the file's stem); run folders go to <runs_dir>/<name>/. "
        "Letters, digits, '.', '_' and '-', not starting with '.' or '-'.",
    )
    description: str = Field("", description="One line for humans.")
    models: list[str | ModelRef] = Field(min_length=1, description="Catalog names or full ModelRefs.")
    tasks: list[str | TaskSpec] = Field(min_length=1, description="Catalog names or inline TaskSpecs.")
    methods: dict[str, MethodBlock] = Field(
        min_length=1,
        description="Method name (or any label with a 'method:' key) -> its grid (a list is a grid axis), "
        "and optionally resources:, tasks: and parent: (docs/methods.md).",
    )
    task_settings: dict[str, TaskSettings] = Field(
        default_factory=dict,
        description="Task name -> settings that replace the task's own, e.g. slo_boolq: {averaging: binary}.",
    )
    seeds: list[Seed] = Field(
        default_factory=lambda: [0], min_length=1, description="Seeds per point (each 0 to 2^32 - 1)."
    )
    max_runs: PositiveInt = Field(
        MAX_RUNS, description="Refuse a sweep of more runs than this (a typo in a grid is caught at once)."
    )
    budget_gpu_hours: float | None = Field(
        None, gt=0, description="GPU-hours this sweep may take; a submission over what is left is refused."
    )
    training: TrainingSettings = Field(default_factory=TrainingSettings)
    resources: ResourceRequest = Field(default_factory=ResourceRequest)
    search: SearchSettings | None = Field(
        None,
        description="Search each cell's grid by successive halving (docs/search.md); a method block's own "
        "`search:` wins. Default: the full grid.",
    )
    tracking: list[Tracker] = Field(
        default_factory=list,
        description="Experiment trackers each run reports to: tensorboard, wandb, mlflow (docs/tracking.md).",
    )

    @property
    def model_names(self) -> list[str]:
        """The names the file gives its models (what a method block's `models:` lists)."""
        return [_entry_name(m) for m in self.models]

    @property
    def task_names(self) -> list[str]:
        """The names the file gives its tasks (what `tasks:`, `parent:` and `task_settings` name)."""
        return [_entry_name(t) for t in self.tasks]

    @field_validator("name")
    @classmethod
    def _name_is_a_safe_folder_name(cls, name: str) -> str:
        if not re.fullmatch(SAFE_NAME, name) or len(name) > 100:
            raise ValueError(
                "A sweep name (default: the file's stem) names its run folder: use 1-100 letters, digits, "
                "'.', '_' or '-', not starting with '.' or '-', no path separators"
            )
        return name


def _entry_name(entry: str | ModelRef | TaskSpec) -> str:
    return entry if isinstance(entry, str) else entry.name
