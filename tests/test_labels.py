"""A label value as a dataset holds it -> its class index."""

from __future__ import annotations

import pytest

from peftbench.tasks.labels import choice_index, label_index


def test_a_label_name_is_its_position():
    assert label_index(["negative", "neutral", "positive"], "positive") == 2
    assert label_index(["A", "B", "C", "D", "E"], "C") == 2


def test_an_index_or_a_digit_string_or_a_boolean_is_the_index_itself():
    assert label_index(["unacceptable", "acceptable"], 1) == 1
    assert label_index(["unacceptable", "acceptable"], "0") == 0
    assert label_index(["false", "true"], True) == 1
    assert label_index(["false", "true"], False) == 0


def test_a_name_wins_over_an_index():
    assert label_index(["1", "2"], "1") == 0
    assert label_index(["1", "2"], "2") == 1


@pytest.mark.parametrize("value", [2, -1, "3", "maybe", None, ""])
def test_anything_else_is_an_error_naming_the_value_and_the_labels(value):
    with pytest.raises(ValueError) as info:
        label_index(["no", "yes"], value)
    assert repr(value) in str(info.value) and "['no', 'yes']" in str(info.value)


def test_a_gold_choice_follows_the_same_rule_counting_the_choices():
    assert choice_index(["A", "B", "C", "D", "E"], "C", 5) == 2
    assert choice_index(["1", "2"], "1", 2) == 0  # a name wins over an index
    assert choice_index(None, 1, 2) == 1  # no labels: the gold is an index into the choices
    assert choice_index(None, "3", 4) == 3


@pytest.mark.parametrize(
    ("labels", "value"), [(["1", "2"], "3"), (None, 2), (["A", "B", "C"], "C"), (None, "x")]
)
def test_a_gold_beyond_the_choices_names_the_value_and_the_labels_it_could_be(labels, value):
    with pytest.raises(ValueError) as info:
        choice_index(labels, value, 2)
    allowed = list(labels or ())[:2]
    assert repr(value) in str(info.value) and f"the labels {allowed}" in str(info.value)
