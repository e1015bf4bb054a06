"""Prompt templates over a row's columns, one kind for every task type that builds a text.

A template is Python format syntax whose fields are column paths only: `{premise}`, or
`{translation.sl}` where dots enter structs. No format specs, conversions, indexing or positional
fields, so every field names a column that can be checked against the data before tokenizing.
"""

from __future__ import annotations

import string
from collections.abc import Mapping
from typing import Any


class PromptTemplate:
    """A template over a row's columns, e.g. `"Translate: {translation.sl}"`; ValueError if it is none."""

    def __init__(self, template: str):
        self.template = template
        self.parts: list[tuple[str, str | None]] = []
        try:
            parsed = list(string.Formatter().parse(template))
        except ValueError as err:
            raise ValueError(f"Prompt {template!r} is not a valid template: {err}") from err
        for literal, name, spec, conversion in parsed:
            if name is not None and (not name or spec or conversion or "[" in name):
                raise ValueError(
                    f"Prompt field {{{name}{'!' + conversion if conversion else ''}"
                    f"{':' + spec if spec else ''}}} is not a column name or dotted path: {template!r}"
                )
            self.parts.append((literal, name))

    @classmethod
    def joining(cls, columns: list[str], separator: str) -> PromptTemplate:
        """The columns' texts one after another, `separator` between them."""
        return cls(separator.join(f"{{{column}}}" for column in columns))

    @property
    def fields(self) -> list[str]:
        """The column paths the template reads, in order."""
        return [name for _, name in self.parts if name is not None]

    def fill(self, row: dict[str, Any]) -> str:
        return self.render(row)[0]

    def render(self, row: dict[str, Any]) -> tuple[str, dict[str, tuple[int, int]]]:
        """The filled-in text, and where in it each field's value lies (character spans)."""
        text, spans = "", {}
        for literal, name in self.parts:
            text += literal
            if name is not None:
                value = self._value(row, name)
                spans[name] = (len(text), len(text) + len(value))
                text += value
        return text, spans

    def _value(self, row: dict[str, Any], path: str) -> str:
        try:
            return column_text(row, path)
        except KeyError:
            raise ValueError(
                f"Prompt {self.template!r}: the row has no column {path!r} (dots enter structs); "
                f"the template's fields are {self.fields}, the row's columns {list(row)}."
            ) from None


def template_problem(template: str | None) -> str | None:
    """Why `template` is not a usable prompt template, or None."""
    if template is None:
        return None
    try:
        fields = PromptTemplate(template).fields
    except ValueError as err:
        return str(err)
    return None if fields else f"Prompt {template!r} has no {{column}} field."


def column_value(row: dict[str, Any], path: str) -> Any:
    """The value at a column path (`document`, `choices.text`); KeyError(path) when any step is missing."""
    value: Any = row
    for key in path.split("."):
        if not isinstance(value, Mapping) or key not in value:
            raise KeyError(path)
        value = value[key]
    return value


def column_text(row: dict[str, Any], path: str) -> str:
    """The value at a column path as text; a missing value (None) is empty."""
    value = column_value(row, path)
    return "" if value is None else str(value)
