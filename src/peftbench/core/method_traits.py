"""What a fine-tuning method does to a model, as far as other rooms must know.

A task type and the planner decide by these traits, never by a method's name: a new method that
adds virtual tokens is refused by the same task types as prompt tuning, with no list to update.
Each method in `methods/` states its own (`Method.traits`); the record lives here, in the contract,
because task types may not import `methods/`.

The padding side is no trait: every tokenizer pads on the right (`models/loading.py:load_tokenizer`),
the one side on which an example scores alike alone and batched under every method (prompt learning
and absolute positions both need it), and a packed task's runs of different methods share one
tokenizer.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class MethodTraits:
    """A method's traits; the defaults describe an adapter on the frozen weights (LoRA, IA3, ...)."""

    adds_virtual_tokens: bool = False
    """Virtual tokens join the input (prompt tuning, p-tuning: as embeddings; prefix tuning: as past
    keys and values): a head must find the text among them."""
    trains_biases: bool = False
    """The base model's own bias terms train (BitFit; full fine-tuning, which trains every weight)."""
    trains_all_weights: bool = False
    """Every weight of the model trains (full fine-tuning)."""
