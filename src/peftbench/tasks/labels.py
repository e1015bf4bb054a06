"""A label value as the data holds it -> its class index, for every task type.

Hub datasets store a class in several ways: an index (GLUE's ClassLabel, HuCOLA's 0/1), the class
name itself (HuSST's "positive", CB's "entailment", CommonsenseQA's answerKey "C"), a digit string
("1" in older HuLU releases), or a boolean (SuperGLUE BoolQ's true/false in JSONL). A TaskSpec's
`labels` lists the class names in index order, so one rule covers all of them: classes, BIO tags,
and the gold choice of a multiple-choice example (`choice_index`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def label_index(labels: Sequence[str], value: Any) -> int:
    """The class index of `value`: its position in `labels`, else the index it spells.

    A name wins over an index: with labels ["1", "2"], the value "1" is class 0. A boolean is an
    index (False -> 0, True -> 1). Anything else raises a ValueError naming the value and the labels.
    """
    index = _spelled_index(labels, value)
    if index is None or not 0 <= index < len(labels):
        raise ValueError(
            f"Label value {value!r} is neither one of the labels {list(labels)} "
            f"nor an index from 0 to {len(labels) - 1}."
        )
    return index


def choice_index(labels: Sequence[str] | None, value: Any, choices: int) -> int:
    """The gold choice of a multiple-choice example: `label_index`'s rule, but it counts the example's
    `choices`, not the labels.

    A task may name no labels (its gold is always an index), and an example may have fewer choices
    than the task has labels; a gold beyond them is a ValueError naming the value and the labels.
    """
    names = list(labels or ())
    index = _spelled_index(names, value)
    if index is None or not 0 <= index < choices:
        raise ValueError(
            f"Gold value {value!r} names none of the example's {choices} choices: it is neither one of "
            f"the labels {names[:choices]} nor an index from 0 to {choices - 1}."
        )
    return index


def _spelled_index(labels: Sequence[str], value: Any) -> int | None:
    """The position of a name in `labels`, else the index a number, digit string or boolean spells."""
    if isinstance(value, str) and value in labels:
        return labels.index(value)
    if isinstance(value, bool | int):
        return int(value)
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return None
