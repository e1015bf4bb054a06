"""What every head reads from a batch: named inputs, the ignored label, where each row's text ends."""

from __future__ import annotations

import torch
from torch.nn import CrossEntropyLoss

from peftbench.models.heads.inputs import IGNORED, attended_last_positions, given_inputs, last_token_positions


def test_given_inputs_keeps_only_what_was_given():
    ids = torch.ones(1, 3)
    assert given_inputs(input_ids=ids, attention_mask=None, inputs_embeds=None) == {"input_ids": ids}


def test_the_ignored_label_is_what_torch_and_transformers_skip():
    logits = torch.tensor([[2.0, 0.0], [0.0, 5.0]])
    assert CrossEntropyLoss().ignore_index == IGNORED
    skipped = CrossEntropyLoss()(logits, torch.tensor([0, IGNORED]))
    torch.testing.assert_close(skipped, CrossEntropyLoss()(logits[:1], torch.tensor([0])))


def test_last_token_positions_with_right_and_left_padding():
    right = torch.tensor([[1, 1, 0, 0], [1, 1, 1, 1]])
    left = torch.tensor([[0, 0, 1, 1], [1, 1, 1, 1]])
    assert last_token_positions(right).tolist() == [1, 3]
    assert last_token_positions(left).tolist() == [3, 3]


def test_a_prefix_longer_mask_is_read_from_its_end():
    """Prefix tuning's mask covers its virtual positions, which have no hidden state."""
    hidden = torch.zeros(2, 3, 4)
    prefixed = torch.tensor([[1, 1, 1, 1, 0], [1, 1, 1, 1, 1]])  # two virtual positions, then the text
    assert attended_last_positions(prefixed, hidden).tolist() == [1, 2]
    assert attended_last_positions(None, hidden).tolist() == [2, 2]
