"""What every head reads from a batch the same way: its named inputs, the label the loss skips, and
where each row's text ends."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

IGNORED = -100
"""The label of a position (token, span, candidate) that no loss or metric counts: padding, special
tokens, context. transformers' and torch's cross-entropy skip it by default."""


def given_inputs(**named: Any) -> dict[str, Any]:
    """The encoder inputs a head's `forward` was given (those not None), to pass on by name.

    Heads name their inputs in `forward` (the Trainer keeps only the dataset columns it names) and
    hand the encoder only those present."""
    return {name: value for name, value in named.items() if value is not None}


def last_token_positions(attention_mask: torch.Tensor) -> torch.Tensor:
    """The index of each row's last attended token, with right or left padding.

    Position -1 would be a padding token in every row shorter than its batch's longest.
    """
    import torch

    positions = torch.arange(attention_mask.shape[-1], device=attention_mask.device)
    return (positions * attention_mask.ne(0)).argmax(-1)


def attended_last_positions(attention_mask: torch.Tensor | None, hidden: torch.Tensor) -> torch.Tensor:
    """Each row's last attended position in `hidden` [rows, length, ...].

    The mask may be longer than the hidden states: prefix tuning's mask covers its virtual key/value
    positions, which have no hidden state; the positions that do are the mask's last `length`.
    Prompt tuning and p-tuning put their virtual tokens in the hidden states and in the mask alike.
    """
    import torch

    rows, length = hidden.shape[:2]
    if attention_mask is None:
        return torch.full((rows,), length - 1, device=hidden.device)
    return last_token_positions(attention_mask[:, -length:]).to(hidden.device)
