"""The run contract: RunSpec and its parts (model, task, training settings, resources).

Every room reads these; nothing here imports torch or pandas. The models are the source of truth:
each field's description is its documentation.
"""

from __future__ import annotations

import hashlib
import json
from typing import Annotated, Any, Literal, get_args

from pydantic import AfterValidator, Field, field_validator, model_validator

from peftbench.core.engines import Engine
from peftbench.core.judge_settings import JudgeSettings
from peftbench.core.search_settings import SearchSettings
from peftbench.core.strict import PositiveInt, StrictModel

DEFAULT_MAX_NEW_TOKENS = 64
Averaging = Literal["binary", "macro", "micro", "weighted"]  # scikit-learn's `average` values a task may set
AVERAGINGS: tuple[str, ...] = get_args(Averaging)
TRAINER_SAVE_STEPS = 500  # transformers' own save_steps: checkpoints by steps with no other interval given
SEED_LIMIT = 2**32  # NumPy's: `np.random.seed` (which transformers' set_seed calls) refuses larger seeds


def _below_numpy_limit(seed: int) -> int:
    """Checked when the sweep is read, not when the run starts (a run seeded 2^40 fails in set_seed)."""
    if seed >= SEED_LIMIT:
        raise ValueError(f"A seed is at most 2^32 - 1 = {SEED_LIMIT - 1}: NumPy refuses larger ones")
    return seed


Seed = Annotated[int, Field(ge=0), AfterValidator(_below_numpy_limit)]



class TrainingSettings(StrictModel):
    """How one run trains and evaluates. Shared by a sweep; any key can be overridden per method."""

    epochs: float = Field(3.0, gt=0, allow_inf_nan=False, description="Passes over the training split.")
    max_steps: PositiveInt | None = Field(None, description="Stop after this many steps (wins over epochs).")
    batch_size: PositiveInt = Field(32, description="Training examples per step per device.")
    eval_batch_size: PositiveInt = Field(128, description="Examples per evaluation batch.")
    gradient_accumulation_steps: PositiveInt = Field(1, description="Steps to accumulate per update.")
    learning_rate: float = Field(5e-5, gt=0, description="Peak learning rate.")
    weight_decay: float = Field(0.0, ge=0, description="AdamW weight decay.")
    warmup_ratio: float = Field(0.06, ge=0, lt=1, description="Share of steps with linear warmup.")
    lr_scheduler: Literal["linear", "cosine", "constant", "constant_with_warmup", "polynomial"] = Field(
        "linear", description="Learning-rate schedule after warmup."
    )
    max_length: PositiveInt = Field(128, description="Longest input in tokens; longer is truncated.")
    precision: Literal["auto", "fp32", "bf16", "fp16"] = Field(
        "auto", description="auto: bf16 on a GPU that supports it, else fp32."
    )
    eval_strategy: Literal["epoch", "steps", "no"] = Field(
        "epoch", description="When to evaluate on validation during training."
    )
    eval_steps: PositiveInt | None = Field(
        None, description="Steps between evaluations (eval_strategy: steps)."
    )
    early_stopping_patience: PositiveInt | None = Field(
        None, description="Stop after this many evaluations without a better validation metric."
    )
    target_validation: float | None = Field(
        None,
        description=(
            "Stop once the validation metric reaches this value (better or equal): a time-to-target run; "
            "needs an eval_strategy other than 'no'."
        ),
    )
    max_train_samples: PositiveInt | None = Field(None, description="Use only the first N training examples.")
    max_eval_samples: PositiveInt | None = Field(
        None,
        description="Use only the first N validation and N test examples (with a group_column: every "
        "row of the groups those N start, so no question is split).",
    )
    group_by_length: bool = Field(True, description="Batch examples of similar length (less padding).")
    checkpoint_steps: PositiveInt | None = Field(
        None, description="Save a resumable checkpoint every N steps (default: at each evaluation or epoch)."
    )
    keep_checkpoints: bool = Field(
        False,
        description="Keep the Trainer's checkpoints after success (the final model is always saved).",
    )
    # Speed switches. None means the fast default, and keeps run ids as they were before the switch.
    padding: Literal["longest", "max_length"] | None = Field(
        None,
        description="Pad each batch to its longest example (default) or every example to max_length.",
    )
    attention: Literal["sdpa", "eager"] | None = Field(
        None, description="Attention kernel (default: the library's, sdpa where the architecture has it)."
    )
    optimizer: Literal["adamw_torch_fused", "adamw_torch"] | None = Field(
        None, description="AdamW kernel (default: the Trainer's, adamw_torch_fused on torch >= 2.8)."
    )
    gradient_checkpointing: bool | None = Field(
        None, description="Recompute activations in the backward pass: less memory, more time (default off)."
    )
    distributed: Engine | None = Field(
        None,
        description=(
            "Engine across the run's processes: DDP, FSDP (full shard) or DeepSpeed ZeRO stage 2/3, "
            "3 with CPU offload (configs/distributed/). Default none: one process."
        ),
    )
    tokenization_cache: bool | None = Field(
        None,
        description="Tokenize each split once per sweep (<sweep>/.cache, or $PEFTBENCH_CACHE); default on.",
    )
    # Text-generating task types (generation, instruction). None keeps run ids as they were.
    max_new_tokens: PositiveInt | None = Field(
        None, description="Generation and instruction tasks: most tokens generated per answer (default 64)."
    )
    temperature: float | None = Field(
        None,
        gt=0,
        description="Generation and instruction tasks: sample answers at this temperature (BELLE: 0.001); "
        "default greedy decoding.",
    )
    packing: bool | None = Field(
        None,
        description="Decoder text tasks: pack training examples into rows of up to max_length tokens, "
        "each example keeping its own positions and attention (default off).",
    )

    # Effective values of the settings whose None stands for a default: read these, not the fields.
    @property
    def effective_padding(self) -> Literal["longest", "max_length"]:
        """`padding`, else "longest": each batch padded to its longest example."""
        return self.padding or "longest"

    @property
    def padded_length(self) -> int | None:
        """The length every example is padded to (padding: max_length), else None: to the batch's longest."""
        return self.max_length if self.effective_padding == "max_length" else None

    @property
    def uses_gradient_checkpointing(self) -> bool:
        """`gradient_checkpointing`, else off."""
        return bool(self.gradient_checkpointing)

    @property
    def engine(self) -> Engine:
        """`distributed`, else "none": one process."""
        return self.distributed or "none"

    @property
    def uses_tokenization_cache(self) -> bool:
        """`tokenization_cache`, else on."""
        return self.tokenization_cache is not False

    @property
    def effective_max_new_tokens(self) -> int:
        """`max_new_tokens`, else 64 or max_length // 2 if less (prompt and answer share max_length)."""
        return self.max_new_tokens or min(DEFAULT_MAX_NEW_TOKENS, self.max_length // 2)

    @property
    def uses_packing(self) -> bool:
        """`packing`, else off."""
        return bool(self.packing)

    @property
    def effective_checkpoint_steps(self) -> int:
        """Steps between step checkpoints: `checkpoint_steps`, else `eval_steps`, else the Trainer's 500."""
        return self.checkpoint_steps or self.eval_steps or TRAINER_SAVE_STEPS

    @model_validator(mode="after")
    def _eval_settings_agree(self) -> TrainingSettings:
        if self.eval_strategy == "steps" and self.eval_steps is None:
            raise ValueError("eval_strategy 'steps' needs eval_steps")
        if self.early_stopping_patience is not None and self.eval_strategy == "no":
            raise ValueError("early_stopping_patience needs an eval_strategy other than 'no'")
        if self.target_validation is not None and self.eval_strategy == "no":
            raise ValueError("target_validation needs an eval_strategy other than 'no'")
        return self


class ResourceRequest(StrictModel):
    """What one run asks the scheduler for. Not part of the run id: where a run ran is not what it is."""

    gpus: int = Field(0, ge=0, description="GPUs per node.")
    nodes: PositiveInt = Field(1, description="Nodes.")
    cpus: PositiveInt = Field(2, description="CPU cores per task.")
    mem_gb: PositiveInt = Field(16, description="Host memory in GB.")
    time_min: Literal["auto"] | PositiveInt = Field(
        60,
        description="Wall-clock limit in minutes, or 'auto': the planner's estimate of the slowest run of "
        "its array × the profile's cost.time_margin, capped by the partition (docs/cost.md).",
    )
    gpu_type: str | None = Field(
        None, description="A GPU type of the cluster profile (default: its default)."
    )
    tasks_per_node: PositiveInt | None = Field(
        None,
        description=(
            "Processes per node (default: one per GPU with a distributed engine, else one; "
            "2 runs a distributed test on a CPU node)."
        ),
    )
    runs_per_gpu: Literal["auto"] | PositiveInt | None = Field(
        None,
        description=(
            "Runs packed into one array task, side by side (docs/packing.md): N, or 'auto' for as many as "
            "the planner fits on the GPU (on a CPU node: one per CPU core of the task). Default 1."
        ),
    )

    @field_validator("time_min", mode="before")
    @classmethod
    def _auto_or_minutes(cls, value: Any) -> Any:
        if value == "auto" or (type(value) is int and value >= 1):
            return value
        raise ValueError("time_min is 'auto' or a whole number of minutes, 1 or more")

    @field_validator("runs_per_gpu", mode="before")
    @classmethod
    def _auto_or_a_count(cls, value: Any) -> Any:
        if value is None or value == "auto" or (type(value) is int and value >= 1):
            return value
        raise ValueError("runs_per_gpu is 'auto' or a whole number of runs, 1 or more")


class ModelRef(StrictModel):
    """A base model: a name for tables, where the weights are, and its architecture family."""

    name: str = Field(description="Short name used in tables and errors.")
    source: str = Field(
        description="A hub id, a local folder, or 'package:MODULE' for weights shipped in a Python package."
    )
    family: str = Field(description="transformers model_type (bert, roberta, llama, ...).")
    gguf_file: str | None = Field(
        None, description="A GGUF file inside source to load (dequantized to fp32), e.g. 'model.Q4_1.gguf'."
    )


class DataSource(StrictModel):
    """Where a task's examples come from: exactly one of bundled, hub or files."""

    bundled: str | None = Field(None, description="A data folder shipped inside peftbench.")
    hub: str | None = Field(None, description="A datasets hub id, or a local folder in that layout.")
    config: str | None = Field(None, description="The hub dataset's configuration name.")
    files: dict[str, str] | None = Field(
        None, description="Split name -> local JSONL/CSV file, for data kept outside any hub."
    )
    layout: Literal["superglue_multirc", "superglue_wsc", "superglue_wic", "superglue_record"] | None = Field(
        None,
        description="Reshape the original SuperGLUE rows into flat ones (tasks/row_layouts.py): one row "
        "per MultiRC answer; WSC's and WiC's pair columns; one row per ReCoRD query with its candidates.",
    )

    @model_validator(mode="after")
    def _exactly_one(self) -> DataSource:
        given = [k for k in ("bundled", "hub", "files") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(f"give exactly one of bundled, hub, files (got {given or 'none'})")
        return self


class TaskSpec(StrictModel):
    """A benchmark as data: source, columns, labels, metric. Catalog entries and inline tasks alike."""

    name: str = Field(description="Short name used in tables and errors.")
    type: str = Field("classification", description="Task type, one of peftbench.tasks.TASK_TYPES.")
    source: DataSource
    splits: dict[Literal["train", "validation", "test"], str] = Field(
        default_factory=lambda: {"train": "train", "validation": "validation", "test": "test"},
        description="Our split -> the source's split (datasets slicing like 'train[:90%]' allowed).",
    )
    text_columns: list[str] = Field(
        min_length=1,
        max_length=2,
        description="One column (single sentence) or two (sentence pair; context and question).",
    )
    label_column: str = Field(
        "label", description="Column with the class: an index into labels, or one of the labels itself."
    )
    labels: list[str] | None = Field(
        None, description="Class names in label-index order (classification, multiple choice, tags)."
    )
    metric: str = Field("accuracy", description="The task's own metric, used to pick and to report.")
    averaging: Averaging | None = Field(
        None,
        description="Classification: how precision, recall and F1 average over classes (default macro); "
        "binary scores the second label as the positive class; other than macro adds <name>_<averaging>.",
    )
    language: str | None = Field(None, description="ISO code of the language, e.g. 'hu'; 'sl-en' for a pair.")
    choice_columns: list[str] | None = Field(
        None, description="Multiple choice: one column per choice (COPA's choice1, choice2)."
    )
    choices_column: str | None = Field(
        None, description="Multiple choice: one column holding the list of choices; dots enter structs."
    )
    target_column: str | None = Field(
        None, description="Generation and instruction tasks: the reference output."
    )
    category_column: str | None = Field(
        None, description="Instruction tasks: the category each example's judge score is averaged in."
    )
    group_column: str | None = Field(
        None,
        description="Classification: the column naming the question each row answers (MultiRC); "
        "with it come SuperGLUE's MultiRC metrics f1a and em (every answer of a question right).",
    )
    max_train_choices: int | None = Field(
        None,
        ge=2,
        description="cloze_choice: training keeps at most this many candidates per example, the gold "
        "ones first (memory); evaluation always scores every candidate.",
    )
    prompt: str | None = Field(
        None, description="A template over the columns, e.g. '{premise} What was the {question}?'."
    )
    scoring: Literal["head", "loglikelihood"] | None = Field(
        None,
        description="Multiple choice on decoders: a trained head (default) or each choice's log-likelihood.",
    )
    judge: JudgeSettings | None = Field(
        None, description="Instruction tasks: an LLM judge that scores each generated answer from 0 to 1."
    )
    test_source: DataSource | None = Field(
        None,
        description="Read the test split here instead (splits.test names its split): one evaluation set "
        "shared by tasks that train on different data, e.g. BELLE's 1k prompts.",
    )

    @property
    def effective_averaging(self) -> Averaging:
        """`averaging`, else macro."""
        return self.averaging or "macro"


# Experiment trackers a run can report to (run/tracking.py): `tracking:` in a sweep.
Tracker = Literal["tensorboard", "wandb", "mlflow"]


class RunSpec(StrictModel):
    """One fully resolved run: everything that decides its result, plus where it was asked for."""

    sweep: str = Field(description="The sweep that asked for it (not part of the run id).")
    model: ModelRef
    task: TaskSpec
    method: str = Field(description="Method family, a key of peftbench.methods.METHODS.")
    label: str = Field(description="The method's name in the sweep (tables use it; not in the run id).")
    params: dict[str, Any] = Field(description="The method's own hyper-parameters, defaults filled in.")
    training: TrainingSettings
    seed: Seed = Field(description="Seeds Python, NumPy and torch: 0 to 2^32 - 1.")
    resources: ResourceRequest = Field(default_factory=ResourceRequest)
    search: SearchSettings | None = Field(
        None, description="Successive halving of the run's cell (None: trains its full budget, as before)."
    )
    tracking: list[Tracker] = Field(
        default_factory=list, description="Experiment trackers the run reports to (not in the run id)."
    )

    @property
    def processes_per_node(self) -> int:
        """One per GPU when an engine shares the work; one otherwise (unless tasks_per_node says)."""
        if self.resources.tasks_per_node is not None:
            return self.resources.tasks_per_node
        shared = self.training.engine != "none"
        return self.resources.gpus if shared and self.resources.gpus else 1

    @property
    def world_size(self) -> int:
        return self.processes_per_node * self.resources.nodes

    @property
    def run_id(self) -> str:
        """A 12-hex-digit hash of what decides the result; same on any machine, any day, any sweep.

        Unset optional settings (None) are left out, so adding a new optional setting later does not
        change the ids of existing runs.
        """
        where = {"sweep": True, "label": True, "resources": True, "tracking": True}  # where, not what
        exclude = {**where, "task": {"judge"}}  # the judge scores answers apart from the run
        payload = self.model_dump(mode="json", exclude=exclude, exclude_none=True)
        canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()[:12]


RUN_SOURCE = "run:"  # a ModelRef source naming the run whose trained model a child starts from
# A child of a searched block: its parent cell's winner on its seed, found when it starts (core/search.py).
WINNER_SOURCE = f"{RUN_SOURCE}winner-of:"


def parent_run_id(spec: RunSpec) -> str | None:
    """The id of the run whose trained model this run starts from (incremental tuning), or None.

    A launcher that runs in parallel must not start this run before that one has succeeded. None too
    for a child of a searched block (WINNER_SOURCE): which run it starts from is known only when it starts.
    """
    source = spec.model.source
    if not source.startswith(RUN_SOURCE) or source.startswith(WINNER_SOURCE):
        return None
    return source.removeprefix(RUN_SOURCE)
