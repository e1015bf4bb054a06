"""What a method is, and the one registry of them.

A method only maps its own config onto the model (through peft where peft has it) and knows how
to save and reload what it trained. The training loop never asks which method it runs.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

from peftbench.core.method_traits import MethodTraits
from peftbench.core.registry import register_class

if TYPE_CHECKING:
    from torch import nn

    from peftbench.core.spec import ResourceRequest
    from peftbench.models.families import FamilyTraits
    from peftbench.models.loading import LoadedModel


class MethodParams(BaseModel):
    """A method's hyper-parameters. Subclasses add fields, each with a description."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def _is_none(value: object) -> bool:
    return value is None


def added_param(description: str, **constraints: Any) -> Any:
    """A parameter added to a method that already has runs: None (the library's default) is left out
    of the params a run records, so the run ids of existing runs stay what they were."""
    return Field(None, description=description, exclude_if=_is_none, **constraints)


class Method(ABC):
    """One fine-tuning method family: `full`, `lora`, `bitfit`, ..."""

    name: ClassVar[str]
    Params: ClassVar[type[MethodParams]] = MethodParams
    description: ClassVar[str] = ""
    traits: ClassVar[MethodTraits] = MethodTraits()  # what task types and the planner ask, not the name
    mergeable: ClassVar[bool] = (
        True  # what it trains folds into plain weights (a parent for incremental runs)
    )

    def unsupported_reason(
        self, traits: FamilyTraits, params: MethodParams, resources: ResourceRequest
    ) -> str | None:
        """Why this method cannot train that model family with these params on these resources, or None.

        Asked for every point of a sweep before anything is submitted.
        """
        return None

    def loading_options(self, params: MethodParams) -> dict[str, Any]:
        """Extra `from_pretrained` keyword arguments for the base model (QLoRA's quantization_config)."""
        return {}

    def trains(self, model: nn.Module) -> bool:
        """Whether the prepared model has anything to train; if not, the run only evaluates it."""
        return any(p.requires_grad for p in model.parameters())

    def callbacks(self, model: nn.Module) -> list[Any]:
        """Trainer callbacks the method needs while training (AdaLoRA's rank allocation, ...)."""
        return []

    @abstractmethod
    def prepare(self, loaded: LoadedModel, params: MethodParams) -> nn.Module:
        """Make exactly the method's parameters trainable (the task head always is)."""

    @abstractmethod
    def save(self, model: nn.Module, directory: Path, state_dict: dict[str, Any] | None = None) -> None:
        """Write what was trained, in the smallest form that reloads.

        `state_dict`, when given, is the model's full state gathered from a sharded run (ZeRO-3,
        FSDP), where the parameters of `model` itself hold only this process's shard.
        """

    @abstractmethod
    def load(self, loaded: LoadedModel, directory: Path) -> nn.Module:
        """Rebuild the trained model from a fresh base model and `save`'s folder."""

    def merged(self, model: nn.Module) -> nn.Module:
        """The trained model as a plain transformers model (adapters folded into the weights).

        What a child run of incremental tuning starts from; only asked of `mergeable` methods.
        """
        return model


METHODS: dict[str, Method] = {}


def register_method(cls: type[Method]) -> type[Method]:
    """Class decorator: add a method under its `name` (core.registry's rule)."""
    return register_class(METHODS, "Method", cls)
