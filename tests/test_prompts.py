"""Prompt templates: one way of filling a template from a row's columns, for every task type."""

from __future__ import annotations

import pytest

from peftbench.tasks.prompts import PromptTemplate, template_problem


def test_a_template_fills_columns_and_dotted_paths():
    template = PromptTemplate("Translate: {translation.sl}\nTopic: {topic}\nEnglish:")
    row = {"translation": {"sl": "Dobro jutro.", "en": "Good morning."}, "topic": None}
    text, spans = template.render(row)
    assert text == "Translate: Dobro jutro.\nTopic: \nEnglish:"
    start, end = spans["translation.sl"]
    assert text[start:end] == "Dobro jutro."
    assert template.fill(row) == text
    assert template.fields == ["translation.sl", "topic"]


def test_a_missing_column_names_the_column_and_the_fields():
    template = PromptTemplate("{premise} What was the {question}?")
    with pytest.raises(ValueError) as caught:
        template.fill({"premise": "The sun rose.", "choice1": "x"})
    message = str(caught.value)
    assert "no column 'question'" in message
    assert "['premise', 'question']" in message and "['premise', 'choice1']" in message


def test_a_missing_struct_field_is_a_missing_column():
    with pytest.raises(ValueError, match=r"no column 'translation\.de'"):
        PromptTemplate("{translation.de}").fill({"translation": {"sl": "x"}})


def test_joined_columns_are_a_template_too():
    template = PromptTemplate.joining(["premise", "question"], " ")
    assert template.fill({"premise": "It rained.", "question": "effect"}) == "It rained. effect"


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("Summarize: {document!r}", "not a column name"),
        ("Summarize: {document[0]}", "not a column name"),
        ("Summarize: {}", "not a column name"),
        ("Summarize: {document:>10}", "not a column name"),
        ("Summarize: {document", "not a valid template: expected '}'"),
        ("No field at all.", "has no {column} field"),
    ],
)
def test_bad_templates_are_refused(template: str, message: str):
    assert message in (template_problem(template) or "")


def test_no_template_is_no_problem():
    assert template_problem(None) is None
    assert template_problem("{premise} {question}") is None
