"""BitFit (Ben Zaken et al., 2022): only the bias terms and the task head train.

peft has no BitFit, so this is ours. What trains is saved as one small safetensors file and
loaded back onto a fresh base model.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from peftbench.methods.base import Method, MethodParams, register_method

if TYPE_CHECKING:
    from torch import nn

    from peftbench.config import ResourceRequest
    from peftbench.models import FamilyTraits, LoadedModel


WEIGHTS_FILE = "bitfit.safetensors"


def is_bitfit_trainable(name: str, head_modules: tuple[str, ...]) -> bool:
    """A bias anywhere, or any parameter of the task head."""
    return name.endswith(".bias") or any(name.startswith(f"{m}.") for m in head_modules)


@register_method
class BitFit(Method):
    name = "bitfit"
    description = "Only bias terms and the task head train."

    def unsupported_reason(
        self, traits: FamilyTraits, params: MethodParams, resources: ResourceRequest
    ) -> str | None:
        if not traits.has_biases:
            return "this family has no bias terms, so BitFit would train the head alone"
        return None

    def prepare(self, loaded: LoadedModel, params: MethodParams) -> nn.Module:
        for name, p in loaded.model.named_parameters():
            p.requires_grad_(is_bitfit_trainable(name, loaded.head_modules))
        return loaded.model

    def save(self, model: nn.Module, directory: Path, state_dict: dict[str, Any] | None = None) -> None:
        from safetensors.torch import save_file

        directory.mkdir(parents=True, exist_ok=True)
        names = [n for n, p in model.named_parameters() if p.requires_grad]
        source = state_dict if state_dict is not None else dict(model.named_parameters())
        trained = {n: source[n].detach().contiguous() for n in names}
        save_file(trained, str(directory / WEIGHTS_FILE))

    def load(self, loaded: LoadedModel, directory: Path) -> nn.Module:
        from safetensors.torch import load_file

        trained = load_file(str(directory / WEIGHTS_FILE))
        missing = set(trained) - {n for n, _ in loaded.model.named_parameters()}
        if missing:
            raise ValueError(f"{directory / WEIGHTS_FILE}: tensors not in the model: {sorted(missing)}")
        loaded.model.load_state_dict(trained, strict=False)
        return loaded.model
