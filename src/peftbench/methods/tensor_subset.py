"""Methods that train some of the model's own tensors (BitFit, the untuned baseline's head).

What trained is saved as one small safetensors file with just those tensors, and loaded back onto
a fresh base model.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from peftbench.methods.base import Method

if TYPE_CHECKING:
    from torch import nn

    from peftbench.models.loading import LoadedModel


class TensorSubsetMethod(Method):
    weights_file: ClassVar[str]

    def save(self, model: nn.Module, directory: Path, state_dict: dict[str, Any] | None = None) -> None:
        from safetensors.torch import save_file

        directory.mkdir(parents=True, exist_ok=True)
        names = [n for n, p in model.named_parameters() if p.requires_grad]
        source = state_dict if state_dict is not None else dict(model.named_parameters())
        trained = {n: source[n].detach().contiguous() for n in names}
        save_file(trained, str(directory / self.weights_file))

    def load(self, loaded: LoadedModel, directory: Path) -> nn.Module:
        from safetensors.torch import load_file

        trained = load_file(str(directory / self.weights_file))
        missing = set(trained) - {n for n, _ in loaded.model.named_parameters()}
        if missing:
            raise ValueError(f"{directory / self.weights_file}: tensors not in the model: {sorted(missing)}")
        loaded.model.load_state_dict(trained, strict=False)
        return loaded.model
