"""What every peft-backed method shares: wrap with get_peft_model, save and reload the adapter."""

from __future__ import annotations

from abc import abstractmethod
from pathlib import Path
from typing import TYPE_CHECKING, Any

from peftbench.methods.base import Method, MethodParams

if TYPE_CHECKING:
    from torch import nn

    from peftbench.models.loading import LoadedModel


class PeftMethod(Method):
    """A method that is one peft config. The task head is always listed in modules_to_save.

    peft adds the head to modules_to_save by itself only for task_type SEQ_CLS (and a few others);
    naming it explicitly keeps the head trainable for every task type and model family.
    """

    @abstractmethod
    def peft_config(self, loaded: LoadedModel, params: MethodParams) -> Any:
        """The peft config for these params (head modules and task type filled in by `prepare`)."""

    def prepare(self, loaded: LoadedModel, params: MethodParams) -> nn.Module:
        from peft import get_peft_model

        config = self.peft_config(loaded, params)
        config.task_type = loaded.peft_task_type
        config.modules_to_save = list(loaded.head_modules)
        return get_peft_model(loaded.model, config)

    def save(self, model: nn.Module, directory: Path, state_dict: dict[str, Any] | None = None) -> None:
        model.save_pretrained(directory, state_dict=state_dict)

    def load(self, loaded: LoadedModel, directory: Path) -> nn.Module:
        from peft import PeftModel

        return PeftModel.from_pretrained(loaded.model, directory)

    def merged(self, model: nn.Module) -> nn.Module:
        return model.merge_and_unload()  # type: ignore[operator]
