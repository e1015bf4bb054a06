"""Full fine-tuning: every weight trains. Just another method, with no adapter config."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from peftbench.core.method_traits import MethodTraits
from peftbench.methods.base import Method, MethodParams, register_method

if TYPE_CHECKING:
    from torch import nn

    from peftbench.models.loading import LoadedModel


@register_method
class FullFineTuning(Method):
    name = "full"
    description = "Every parameter trains; the whole model is saved."
    traits = MethodTraits(trains_all_weights=True, trains_biases=True)

    def prepare(self, loaded: LoadedModel, params: MethodParams) -> nn.Module:
        for p in loaded.model.parameters():
            p.requires_grad_(True)
        return loaded.model

    def save(self, model: nn.Module, directory: Path, state_dict: dict[str, Any] | None = None) -> None:
        model.save_pretrained(directory, state_dict=state_dict)

    def load(self, loaded: LoadedModel, directory: Path) -> nn.Module:
        return type(loaded.model).from_pretrained(directory)
