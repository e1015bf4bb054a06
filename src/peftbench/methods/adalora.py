"""AdaLoRA (Zhang et al., 2023): LoRA whose ranks are reallocated during training, through peft.

peft's AdaLoRA needs the total number of optimizer steps up front and a call to
`update_and_allocate(step)` after every update. Both come from a Trainer callback, so the training
loop knows nothing about AdaLoRA: the schedule is given as shares of the run's steps.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import Field, model_validator

from peftbench.methods.base import MethodParams, register_method
from peftbench.methods.lora import TargetModules, target_modules_for
from peftbench.methods.peft_adapter import PeftMethod

if TYPE_CHECKING:
    from torch import nn

    from peftbench.models.loading import LoadedModel

# Until the Trainer knows its step count, the schedule is written for this many steps; the callback
# rescales it to the real count when training begins.
SCHEDULE_BASIS = 10_000


class AdaLoraParams(MethodParams):
    init_r: int = Field(12, gt=0, description="Rank of every update matrix when training starts.")
    target_r: int = Field(8, gt=0, description="Average rank left after the budget has shrunk.")
    lora_alpha: float = Field(16, gt=0, description="Scaling numerator of the updates.")
    lora_dropout: float = Field(0.1, ge=0, lt=1, description="Dropout on the adapter input.")
    target_modules: TargetModules = Field(
        None, description="As for lora: module names, 'attention', 'all-linear', or None for peft's default."
    )
    tinit_ratio: float = Field(
        0.1, ge=0, lt=1, description="Share of the steps trained at full rank before ranks are pruned."
    )
    tfinal_ratio: float = Field(
        0.2, ge=0, lt=1, description="Share of the steps trained at the final ranks, at the end."
    )
    delta_t: int = Field(1, gt=0, description="Steps between two rank reallocations.")
    beta1: float = Field(0.85, gt=0, lt=1, description="EMA factor of the importance (sensitivity) scores.")
    beta2: float = Field(0.85, gt=0, lt=1, description="EMA factor of the importance uncertainty.")
    orth_reg_weight: float = Field(0.5, ge=0, description="Weight of the orthogonality penalty on P and Q.")

    @model_validator(mode="after")
    def _budget_phase_left(self) -> AdaLoraParams:
        if self.tinit_ratio + self.tfinal_ratio >= 1:
            raise ValueError("tinit_ratio + tfinal_ratio must be below 1 (no steps left to reallocate ranks)")
        if self.target_r > self.init_r:
            raise ValueError("target_r must not exceed init_r (the budget only shrinks)")
        return self


def rank_allocation(model: nn.Module) -> Any:
    """A TrainerCallback that fits AdaLoRA's schedule to the Trainer's step count when training begins
    and reallocates ranks after each update (after optimizer.step(), before zero_grad())."""
    from transformers import TrainerCallback

    config = model.peft_config[model.active_adapter]  # type: ignore[index]
    tinit_share, tfinal_share = config.tinit / SCHEDULE_BASIS, config.tfinal / SCHEDULE_BASIS

    class RankAllocation(TrainerCallback):
        def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            config.total_step = state.max_steps
            config.tinit = int(tinit_share * state.max_steps)
            config.tfinal = int(tfinal_share * state.max_steps)

        def on_optimizer_step(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            # global_step counts the updates before this one; peft's schedule counts from 1.
            model.base_model.update_and_allocate(state.global_step + 1)  # type: ignore[union-attr]

    return RankAllocation()


@register_method
class AdaLora(PeftMethod):
    name = "adalora"
    Params = AdaLoraParams
    description = "LoRA with an importance-driven rank budget that shrinks from init_r to target_r."

    def peft_config(self, loaded: LoadedModel, params: AdaLoraParams) -> Any:  # type: ignore[override]
        from peft import AdaLoraConfig

        return AdaLoraConfig(
            init_r=params.init_r,
            target_r=params.target_r,
            lora_alpha=params.lora_alpha,
            lora_dropout=params.lora_dropout,
            target_modules=target_modules_for(params.target_modules, loaded.model),
            total_step=SCHEDULE_BASIS,
            tinit=round(params.tinit_ratio * SCHEDULE_BASIS),
            tfinal=round(params.tfinal_ratio * SCHEDULE_BASIS),
            deltaT=params.delta_t,
            beta1=params.beta1,
            beta2=params.beta2,
            orth_reg_weight=params.orth_reg_weight,
        )

    def callbacks(self, model: nn.Module) -> list[Any]:
        return [rank_allocation(model)]

    def load(self, loaded: LoadedModel, directory: Path) -> nn.Module:
        from peft import PeftModel

        # peft 0.21's AdaLoraModel.forward adds its orthogonality penalty to any loss, which needs
        # the trainable adapter's name: a model loaded for inference fails on batches with labels.
        return PeftModel.from_pretrained(loaded.model, directory, is_trainable=True)
