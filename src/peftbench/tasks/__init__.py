"""Task types (one module each, registered in TASK_TYPES) and the benchmark catalog."""

from peftbench.tasks import (
    classification,
    cloze_choice,
    coreference,
    generation,
    instruction,
    multiple_choice,
    token_classification,
)
from peftbench.tasks.base import TASK_TYPES, PreparedData, TaskType, register_task_type
from peftbench.tasks.catalog import TASK_CATALOG

__all__ = [
    "TASK_CATALOG",
    "TASK_TYPES",
    "PreparedData",
    "TaskType",
    "classification",
    "cloze_choice",
    "coreference",
    "generation",
    "instruction",
    "multiple_choice",
    "register_task_type",
    "token_classification",
]
