"""The LLM judge against a real local HTTP server that speaks chat completions."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from pydantic import ValidationError

from peftbench.core.judge_settings import JudgeSettings
from peftbench.tasks import judge as judge_module
from peftbench.tasks.judge import Judge, JudgeError, JudgeItem, judge_metrics, parse_score

# A prompt the fake judge can read back: one field per line.
LINE_PROMPT = "Q: {question}\nR: {reference}\nC: {category}\nA: {answer}"
SCORES = {"right": 1.0, "partly": 0.5, "wrong": 0.0}
# The same score written the ways judges write it; the fake judge rotates through them.
SCORE_STYLES = (
    "I compared it with the reference.\n{}",
    "Reasoning: close.\nScore: {}",
    "**{}**",
    "得分: {}分",
)


class ChatServer(ThreadingHTTPServer):
    """A chat-completions server on localhost; `reply(body) -> (status, bytes)` decides each answer."""

    def __init__(self, reply: Callable[[dict[str, Any]], tuple[int, bytes]], delay_s: float = 0.0):
        super().__init__(("127.0.0.1", 0), ChatHandler)
        self.reply, self.delay_s = reply, delay_s
        self.requests: list[tuple[dict[str, str], dict[str, Any]]] = []
        self.in_flight = self.most_in_flight = 0
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/v1"


class ChatHandler(BaseHTTPRequestHandler):
    server: ChatServer

    def do_POST(self) -> None:
        """A request counts as in flight until its answer is decided, before any byte of it is sent:
        counted down after sending, the client could already have sent its next request (seen in CI:
        3 in flight at max_concurrent 2)."""
        server = self.server
        with server.lock:
            server.in_flight += 1
            server.most_in_flight = max(server.most_in_flight, server.in_flight)
        try:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            with server.lock:
                server.requests.append((dict(self.headers), body))
            time.sleep(server.delay_s)
            status, payload = (
                server.reply(body) if self.path == "/v1/chat/completions" else (404, b"no route")
            )
        finally:
            with server.lock:
                server.in_flight -= 1
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args: Any) -> None:
        pass


@contextmanager
def chat_server(
    reply: Callable[[dict[str, Any]], tuple[int, bytes]], delay_s: float = 0.0
) -> Iterator[ChatServer]:
    server = ChatServer(reply, delay_s)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def completion(content: str) -> tuple[int, bytes]:
    body = {
        "id": "x",
        "object": "chat.completion",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content}}],
    }
    return 200, json.dumps(body).encode()


def line_judge(body: dict[str, Any]) -> tuple[int, bytes]:
    """Scores the answer on the `A:` line of LINE_PROMPT: right 1, partly 0.5, else 0."""
    fields = dict(line.split(": ", 1) for line in body["messages"][0]["content"].splitlines())
    score = SCORES.get(fields["A"], 0.0)
    style = SCORE_STYLES[len(fields["Q"]) % len(SCORE_STYLES)]
    return completion(style.format(score))


def settings(url: str, **extra: Any) -> JudgeSettings:
    return JudgeSettings.model_validate({"url": url, "model": "judge-7b", "prompt": LINE_PROMPT} | extra)


def test_scores_per_category_and_their_macro_average():
    items = [
        JudgeItem("q1", "r", "right", "A"),
        JudgeItem("q22", "r", "wrong", "A"),
        JudgeItem("q333", "r", "partly", "B"),
        JudgeItem("q4444", "r", "right", "C"),
        JudgeItem("q5", "r", "right", "C"),
        JudgeItem("q66", "r", "partly", "C"),
    ]
    with chat_server(line_judge, delay_s=0.05) as server:
        scores = Judge(settings(server.url, max_concurrent=2)).score_all(items)
    assert scores == [1.0, 0.0, 0.5, 1.0, 1.0, 0.5]
    metrics = judge_metrics(scores, [i.category for i in items])
    # A: (1 + 0) / 2 = 0.5; B: 0.5; C: (1 + 1 + 0.5) / 3 = 5/6; macro (0.5 + 0.5 + 5/6) / 3 = 11/18
    # (the plain mean over answers would be 4/6).
    assert metrics == pytest.approx({"judge": 11 / 18, "judge/A": 0.5, "judge/B": 0.5, "judge/C": 5 / 6})
    assert len(server.requests) == len(items)
    assert server.most_in_flight == 2  # concurrent, and never more than max_concurrent


def test_request_follows_the_chat_completions_protocol(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("JUDGE_KEY", "s3cret")
    with chat_server(line_judge) as server:
        judge = Judge(settings(server.url + "/", api_key_env="JUDGE_KEY", max_tokens=64))
        assert judge.score(JudgeItem("What is 2+2?", "4", "right", "math")) == 1.0
    headers, body = server.requests[0]
    assert headers["Authorization"] == "Bearer s3cret"
    assert body["model"] == "judge-7b" and body["temperature"] == 0 and body["max_tokens"] == 64
    assert body["messages"] == [{"role": "user", "content": "Q: What is 2+2?\nR: 4\nC: math\nA: right"}]


def test_default_prompt_shows_the_judge_everything():
    with chat_server(lambda body: completion("Fine.\n0.9")) as server:
        judge = Judge(JudgeSettings(url=server.url, model="m"))
        assert judge.score(JudgeItem("Name a colour.", "Red.", "Blue.", "brainstorming")) == 0.9
    message = server.requests[0][1]["messages"][0]["content"]
    assert all(text in message for text in ("Name a colour.", "Red.", "Blue.", "brainstorming"))


@pytest.mark.parametrize(
    ("content", "score"),
    [
        ("0.8", 0.8),
        ("The answer is right.\n1", 1.0),
        ("Close to the reference.\nScore: 0.75.", 0.75),
        ("**0.5**", 0.5),
        ("得分: 1分", 1.0),
        ("得分: 0.5分。模型回答与标准答案基本一致。", 0.5),  # BELLE's style: no line of its own
        ("<think>maybe 10? no</think>\nIt misses a step.\n.25", 0.25),
        ("Rating = 0\n", 0.0),
    ],
)
def test_parse_score_reads_the_score(content: str, score: float):
    assert parse_score(content) == score


@pytest.mark.parametrize(
    ("content", "message"),
    [("Looks good to me.", "no score"), ("Quality 8 out of 10\n8", "outside"), ("", "no score")],
)
def test_parse_score_refuses_replies_without_a_score_in_range(content: str, message: str):
    with pytest.raises(ValueError, match=message):
        parse_score(content)


def test_reply_without_a_score_is_a_clear_error():
    with chat_server(lambda body: completion("I would say it is pretty good overall.")) as server:
        judge = Judge(settings(server.url))
        with pytest.raises(JudgeError) as caught:
            judge.score(JudgeItem("q", "r", "a"))
    message = str(caught.value)
    assert f"{server.url}/chat/completions" in message and "judge-7b" in message
    assert "pretty good overall" in message


def test_garbage_reply_is_a_clear_error():
    garbage = chat_server(lambda body: (200, b"<html>upstream says hi</html>"))
    expected = r"/v1/chat/completions sent no chat completion: .*upstream"
    with garbage as server, pytest.raises(JudgeError, match=expected):
        Judge(settings(server.url)).score(JudgeItem("q", "r", "a"))


def test_http_errors_are_retried_then_reported(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(judge_module, "BACKOFF_S", 0.0)
    overloaded = chat_server(lambda body: (503, b"overloaded"))
    with overloaded as server, pytest.raises(JudgeError, match="answered HTTP 503: 'overloaded'"):
        Judge(settings(server.url, retries=2)).score(JudgeItem("q", "r", "a"))
    assert len(server.requests) == 3
    with chat_server(lambda body: (400, b"bad model")) as server, pytest.raises(JudgeError, match="HTTP 400"):
        Judge(settings(server.url, retries=2)).score(JudgeItem("q", "r", "a"))
    assert len(server.requests) == 1  # a client error is not retried


def test_unreachable_server_is_a_clear_error():
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}/v1"
    started = time.perf_counter()
    with pytest.raises(JudgeError, match=rf"Judge {url}/chat/completions unreachable"):
        Judge(settings(url)).check()
    assert time.perf_counter() - started < 5  # refused at once, not retried


def test_missing_api_key_is_a_clear_error(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("NO_SUCH_JUDGE_KEY", raising=False)
    with pytest.raises(JudgeError, match=r"\$NO_SUCH_JUDGE_KEY is not set"):
        Judge(settings("http://127.0.0.1:9/v1", api_key_env="NO_SUCH_JUDGE_KEY")).score(
            JudgeItem("q", "r", "a")
        )


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"prompt": "Rate {answer} for {user}"}, r"unknown field\(s\) \['user'\]"),
        ({"prompt": "Rate this: {reference}"}, "must contain {answer}"),
        ({"url": "localhost:8000/v1"}, "must start with http"),
        ({"max_concurrent": 0}, "greater than 0"),
        ({"prompt": {"math": "{answer}", "code": "{reference}"}}, r"prompt\['code'\] must contain"),
        ({"prompt": {}}, "empty mapping"),
    ],
)
def test_judge_settings_are_checked(extra: dict[str, Any], message: str):
    with pytest.raises(ValidationError, match=message):
        JudgeSettings.model_validate({"url": "http://localhost:8000/v1", "model": "m"} | extra)


def test_judge_metrics_without_categories_is_the_mean():
    assert judge_metrics([1.0, 0.0, 0.5], None) == {"judge": 0.5}
    assert judge_metrics([], None) == {}
