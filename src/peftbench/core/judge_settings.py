"""An LLM judge's settings: where it is, how it is asked, and its prompt (the default, or BELLE's own).

Part of a TaskSpec but not of its run id: training never depends on the judge (core/judging.py).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from peftbench.core.judge_templates import check_judge_template, template_for
from peftbench.core.strict import PositiveInt, StrictModel

JUDGE_PROMPT = """You are grading an assistant's answer to a user's request.

Category: {category}

Request:
{question}

Reference answer:
{reference}

Assistant's answer:
{answer}

Using the reference answer as a guide, judge how well the assistant's answer fulfils the request:
1 means fully correct and helpful, 0 means wrong or useless; values in between are allowed.
Reply with one sentence of reasoning, then the score alone on the last line, e.g.
0.7"""


class JudgeSettings(StrictModel):
    """An LLM judge behind an OpenAI-compatible chat-completions endpoint (vLLM, llama.cpp, any API).

    Part of the TaskSpec but not of its run id: training never depends on the judge (core/judging.py).
    """

    url: str = Field(
        description="Server base URL, e.g. http://localhost:8000/v1; requests go to {url}/chat/completions."
    )
    model: str = Field(description="The judge model's name on that server (the request's `model`).")
    api_key_env: str | None = Field(
        None, description="Environment variable holding an API key, sent as a Bearer token (default: none)."
    )
    timeout_s: float = Field(120.0, gt=0, description="Seconds to wait for one reply.")
    max_concurrent: PositiveInt = Field(8, description="Requests in flight at once.")
    retries: int = Field(
        2, ge=0, le=10, description="Retries of a request that timed out or got a 429 or 5xx reply."
    )
    max_tokens: PositiveInt | None = Field(
        None, description="Longest judge reply in tokens (default: the server's limit)."
    )
    where: Literal["apart", "run"] | None = Field(
        None,
        description="apart (default): runs save their answers and `peftbench judge` scores them later; "
        "run: each run asks the judge itself (a server its compute nodes reach).",
    )
    category_groups: dict[str, str] | None = Field(
        None,
        description="Category -> the category it is averaged in (BELLE: {math: others, code: others}); "
        "default each category its own.",
    )
    prompt: str | dict[str, str] = Field(
        JUDGE_PROMPT,
        description="The judge's message: a template over {question}, {reference}, {answer} and {category}; "
        "or one template per category (BELLE's own prompts), '*' for the categories not named. The "
        "reply must hold the score (0 to 1): alone on its last line, or as 'score: X' / '得分: X'.",
    )

    @model_validator(mode="after")
    def _prompt_fields_known(self) -> JudgeSettings:
        templates = self.prompt if isinstance(self.prompt, dict) else {"": self.prompt}
        if not templates:
            raise ValueError("prompt is an empty mapping: give a template, or one per category")
        for category, template in templates.items():
            check_judge_template(f"prompt[{category!r}]" if category else "prompt", template)
        if not self.url.startswith(("http://", "https://")):
            raise ValueError(f"url must start with http:// or https:// (got {self.url!r})")
        return self

    def template_for(self, category: str) -> str:
        """The prompt template for answers of `category` (core/judge_templates.py says how)."""
        return template_for(self.prompt, category)
