"""The judge's message templates: which fields they may hold, and which template a category takes.

A judge prompt is one template, or one per category (BELLE's own prompts differ by category). The
eval set's category names and the prompts' may differ in case and in the kind of space (BELLE's set
writes "closed\\xa0qa", its prompts "closed\\xa0QA"), so names are compared as words.
"""

from __future__ import annotations

import string

JUDGE_FIELDS = ("question", "reference", "answer", "category")


def check_judge_template(where: str, template: str) -> None:
    """ValueError unless `template` formats with the judge's fields only, {answer} among them."""
    try:
        fields = {f for _, f, _, _ in string.Formatter().parse(template) if f is not None}
    except ValueError as err:
        raise ValueError(f"{where} is not a valid template: {err}") from err
    unknown = sorted(fields - set(JUDGE_FIELDS))
    if unknown:
        raise ValueError(f"{where} has unknown field(s) {unknown}; allowed: {list(JUDGE_FIELDS)}")
    if "answer" not in fields:
        raise ValueError(f"{where} must contain {{answer}}")


def category_key(category: str) -> str:
    """A category name compared as words: case folded, any run of (non-breaking) spaces one space."""
    return " ".join(category.split()).casefold()


def template_for(prompt: str | dict[str, str], category: str) -> str:
    """The template for answers of `category`: the one template, else the category's own, else '*';
    the server check (category "") takes the first. ValueError for a category no template names."""
    if isinstance(prompt, str):
        return prompt
    named = {category_key(k): v for k, v in prompt.items()}
    found = named.get(category_key(category), prompt.get("*"))
    if found is not None:
        return found
    if not category:
        return next(iter(prompt.values()))
    raise ValueError(f"no judge prompt for category {category!r}; the prompts name {sorted(prompt)}")
