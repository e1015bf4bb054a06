"""The untuned baseline: the pretrained model as it is, with only its task head trained.

For an encoder that is a linear probe (the head learns on frozen features). A model with no new
head (a decoder scoring answers by log-likelihood) has nothing to train, and the run only evaluates.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from peftbench.methods.base import MethodParams, register_method
from peftbench.methods.tensor_subset import TensorSubsetMethod

if TYPE_CHECKING:
    from torch import nn

    from peftbench.models.loading import LoadedModel


@register_method
class Untuned(TensorSubsetMethod):
    name = "none"
    description = "No fine-tuning: only the task head trains (nothing, where the model has no new head)."
    weights_file = "head.safetensors"

    def prepare(self, loaded: LoadedModel, params: MethodParams) -> nn.Module:
        for name, p in loaded.model.named_parameters():
            p.requires_grad_(any(name.startswith(f"{m}.") for m in loaded.head_modules))
        return loaded.model
