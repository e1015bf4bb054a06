"""BitFit (Ben Zaken et al., 2022): only the bias terms and the task head train.

peft has no BitFit, so this is ours.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from peftbench.core.method_traits import MethodTraits
from peftbench.methods.base import MethodParams, register_method
from peftbench.methods.tensor_subset import TensorSubsetMethod

if TYPE_CHECKING:
    from torch import nn

    from peftbench.core.spec import ResourceRequest
    from peftbench.models.families import FamilyTraits
    from peftbench.models.loading import LoadedModel


WEIGHTS_FILE = "bitfit.safetensors"


def is_bitfit_trainable(name: str, head_modules: tuple[str, ...]) -> bool:
    """A bias anywhere, or any parameter of the task head."""
    return name.endswith(".bias") or any(name.startswith(f"{m}.") for m in head_modules)


@register_method
class BitFit(TensorSubsetMethod):
    name = "bitfit"
    description = "Only bias terms and the task head train."
    weights_file = WEIGHTS_FILE
    traits = MethodTraits(trains_biases=True)

    def unsupported_reason(
        self, traits: FamilyTraits, params: MethodParams, resources: ResourceRequest
    ) -> str | None:
        if not traits.has_biases:
            return (
                "this family has no bias terms, so BitFit would train the task head alone; use 'none' "
                "for a head-only baseline, or a small adapter such as 'ia3' or 'lora' instead"
            )
        return None

    def prepare(self, loaded: LoadedModel, params: MethodParams) -> nn.Module:
        for name, p in loaded.model.named_parameters():
            p.requires_grad_(is_bitfit_trainable(name, loaded.head_modules))
        return loaded.model
