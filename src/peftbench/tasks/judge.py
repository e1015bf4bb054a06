"""An LLM judge: each generated answer scored from 0 to 1 by a model behind an OpenAI-compatible server.

As in the BELLE study (Ji et al., 2023), a judge model reads the request, a reference answer and the
model's answer and gives a score in [0, 1]; the scores are averaged per category, and `judge` is the
macro average over categories (`judge/<category>` each).

The protocol is chat completions: POST `{url}/chat/completions` with `model` and `messages`; the
score is read from `choices[0].message.content`, from the last line that holds a number alone
("0.8", "Score: 0.8", "**1**", "得分: 1分"), else from the last "score: X" in the text. A `<think>`
block (reasoning models) is skipped. Any server that speaks it will do: vLLM
(`vllm serve MODEL`, url http://HOST:8000/v1), llama.cpp's llama-server, a hosted API.
Only the standard library is used (urllib and a thread pool).
"""

from __future__ import annotations

import http.client
import json
import os
import re
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from peftbench.core.errors import PeftbenchError
from peftbench.core.judging import judge_metrics

if TYPE_CHECKING:
    from peftbench.core.judge_settings import JudgeSettings


RETRY_STATUS = {408, 409, 429, 500, 502, 503, 504}


BACKOFF_S = 1.0  # doubled after each retry


_NUMBER = r"(\d+(?:\.\d+)?|\.\d+)"


_LABEL = r"(?:score|rating|得分|分数|评分)"


_UNIT = r"(?:分|/\s*1(?:\.0+)?)"  # "1分", "0.5/1"


_SCORE_LINE = re.compile(rf"^[\W_]*?(?:{_LABEL}\s*[:：=]?\s*)?{_NUMBER}\s*{_UNIT}?[\W_]*$", re.I)


_SCORE_ANYWHERE = re.compile(rf"{_LABEL}\s*[:：=]\s*{_NUMBER}", re.I)


_THINKING = re.compile(r"<think>.*?</think>", re.S)


class JudgeError(PeftbenchError, RuntimeError):
    """The judge could not be asked, or its reply held no score; the message names the server."""


class NoScore(JudgeError):
    """The judge answered, but without a usable score: that answer only, the judge itself works."""


__all__ = ["Judge", "JudgeError", "JudgeItem", "NoScore", "Verdict", "judge_metrics", "parse_score"]


@dataclass(frozen=True)
class Verdict:
    """A score and what asking for it cost in tokens (the server's `usage`; 0 when it gives none)."""

    score: float
    tokens_sent: int = 0
    tokens_received: int = 0


@dataclass(frozen=True)
class JudgeItem:
    """One answer to score, with what it answered."""

    question: str
    reference: str
    answer: str
    category: str = ""


def parse_score(content: str) -> float:
    """The score in a judge's reply; ValueError when there is none, or it lies outside [0, 1]."""
    text = _THINKING.sub("", content)
    found = None
    for line in reversed(text.strip().splitlines()):
        match = _SCORE_LINE.match(line.strip())
        if match:
            found = match.group(1)
            break
    if found is None:
        labelled = _SCORE_ANYWHERE.findall(text)
        if not labelled:
            raise ValueError("no score: expected a number from 0 to 1 alone on the last line")
        found = labelled[-1]
    score = float(found)
    if not 0.0 <= score <= 1.0:
        raise ValueError(f"score {found} is outside [0, 1]")
    return score


class Judge:
    """Scores answers through one configured server and model."""

    def __init__(self, settings: JudgeSettings):
        self.settings = settings
        self.endpoint = settings.url.rstrip("/") + "/chat/completions"

    def score_all(self, items: Sequence[JudgeItem]) -> list[float]:
        """Each item's score, in order; at most `max_concurrent` requests at once."""
        if not items:
            return []
        with ThreadPoolExecutor(max_workers=min(self.settings.max_concurrent, len(items))) as pool:
            return list(pool.map(self.score, items))

    def score(self, item: JudgeItem) -> float:
        return self.verdict(item).score

    def verdict(self, item: JudgeItem) -> Verdict:
        """The item's score and the tokens its request and reply took."""
        try:
            template = self.settings.template_for(item.category)
        except ValueError as err:
            raise JudgeError(f"Judge {self.endpoint}: {err}") from err
        message = template.format(
            question=item.question, reference=item.reference, answer=item.answer, category=item.category
        )
        content, usage = self.complete_with_usage(message)
        try:
            return Verdict(parse_score(content), *usage)
        except ValueError as err:
            excerpt = content if len(content) <= 300 else content[:150] + " … " + content[-150:]
            raise NoScore(
                f"Judge {self.endpoint} (model {self.settings.model!r}) replied without a usable score "
                f"({err}): {excerpt!r}"
            ) from err

    def check(self) -> None:
        """Ask once with a trivially right answer: a server that is down or speaks no chat
        completions fails here, before any training, instead of after it."""
        self.score(JudgeItem("Repeat the word: hello", "hello", "hello", ""))

    def complete(self, message: str) -> str:
        """The content of the server's reply to one user message."""
        return self.complete_with_usage(message)[0]

    def complete_with_usage(self, message: str) -> tuple[str, tuple[int, int]]:
        """The reply's content, and (prompt tokens, completion tokens) from its `usage`."""
        body: dict[str, Any] = {
            "model": self.settings.model,
            "messages": [{"role": "user", "content": message}],
            "temperature": 0,
        }
        if self.settings.max_tokens is not None:
            body["max_tokens"] = self.settings.max_tokens
        reply = self._post(json.dumps(body).encode())
        try:
            parsed = json.loads(reply)
            content = parsed["choices"][0]["message"]["content"]
        except (ValueError, KeyError, IndexError, TypeError) as err:
            excerpt = reply[:300].decode("utf-8", "replace")
            raise JudgeError(f"Judge {self.endpoint} sent no chat completion: {excerpt!r}") from err
        if not isinstance(content, str):
            raise JudgeError(f"Judge {self.endpoint} sent a completion without text content: {content!r}")
        return content, token_usage(parsed)

    def _post(self, data: bytes) -> bytes:
        request = urllib.request.Request(self.endpoint, data=data, headers=self._headers(), method="POST")
        for attempt in range(self.settings.retries + 1):
            last = attempt == self.settings.retries
            try:
                with urllib.request.urlopen(request, timeout=self.settings.timeout_s) as response:
                    return response.read()
            except urllib.error.HTTPError as err:
                if err.code not in RETRY_STATUS or last:
                    detail = err.read()[:300].decode("utf-8", "replace")
                    raise JudgeError(f"Judge {self.endpoint} answered HTTP {err.code}: {detail!r}") from err
            except OSError as err:  # URLError (refused, no such host), timeouts, resets
                reason = getattr(err, "reason", err)
                transient = isinstance(reason, (TimeoutError, ConnectionResetError))
                if not transient or last:
                    what = (
                        f"timed out after {self.settings.timeout_s:g} s"
                        if isinstance(reason, TimeoutError)
                        else "unreachable"
                    )
                    raise JudgeError(f"Judge {self.endpoint} {what}: {reason}") from err
            except http.client.HTTPException as err:
                raise JudgeError(f"Judge {self.endpoint} sent a malformed HTTP reply: {err!r}") from err
            time.sleep(BACKOFF_S * 2**attempt)
        raise AssertionError("unreachable: the last attempt returns or raises")

    def _headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/json"}
        name = self.settings.api_key_env
        if name is not None:
            key = os.environ.get(name)
            if not key:
                raise JudgeError(f"Judge {self.endpoint}: api_key_env is {name!r}, but ${name} is not set.")
            headers["Authorization"] = f"Bearer {key}"
        return headers


def token_usage(reply: Any) -> tuple[int, int]:
    """(prompt_tokens, completion_tokens) of a chat completion's `usage`, 0 where a server leaves it out."""
    usage = reply.get("usage") if isinstance(reply, dict) else None
    if not isinstance(usage, dict):
        return 0, 0
    counts = [usage.get(k) for k in ("prompt_tokens", "completion_tokens")]
    return (counts[0] if isinstance(counts[0], int) else 0, counts[1] if isinstance(counts[1], int) else 0)
