"""Task types (one module each, coreference a package; registered in TASK_TYPES) and the benchmark catalog."""

from peftbench.tasks import (
    classification,
    cloze_choice,
    generation,
    instruction,
    multiple_choice,
    token_classification,
)
from peftbench.tasks.base import TASK_TYPES, PreparedData, TaskType, register_task_type
from peftbench.tasks.catalog import TASK_CATALOG
from peftbench.tasks.coreference import task as coreference_task  # the package's own __init__ imports nothing

__all__ = [
    "TASK_CATALOG",
    "TASK_TYPES",
    "PreparedData",
    "TaskType",
    "classification",
    "cloze_choice",
    "coreference_task",
    "generation",
    "instruction",
    "multiple_choice",
    "register_task_type",
    "token_classification",
]
