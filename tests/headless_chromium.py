"""Load a page in a real headless Chromium and report what a reader would see go wrong.

Speaks the DevTools protocol over `--remote-debugging-pipe` (fd 3 in, fd 4 out, NUL-separated
JSON), so it needs nothing but the `chromium` binary: no Playwright, no websocket library. It
collects console errors, uncaught exceptions and browser log errors (e.g. a resource that failed to
load), checks that every <img> decoded and has a size on the page, and takes a full-page screenshot.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import json
import os
import select
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CHROMIUM_NAMES = ("chromium", "chromium-browser")
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--remote-debugging-pipe",
)
IMAGES_SCRIPT = """
Promise.all([...document.images].map(img => img.decode().then(() => true, () => false).then(ok => ({
  alt: img.alt, decoded: ok, width: img.naturalWidth, height: img.naturalHeight,
  shownWidth: img.getBoundingClientRect().width, shownHeight: img.getBoundingClientRect().height,
}))))
"""


def find_chromium() -> str | None:
    return next((path for name in CHROMIUM_NAMES if (path := shutil.which(name))), None)


@dataclass
class PageLoad:
    errors: list[str] = field(default_factory=list)  # console errors, exceptions, log errors
    images: list[dict[str, Any]] = field(default_factory=list)
    screenshot: bytes = b""
    title: str = ""
    values: dict[str, Any] = field(default_factory=dict)  # what each of `expressions` evaluated to


class _Pipe:
    """A DevTools session over the two pipes Chromium opens with --remote-debugging-pipe."""

    def __init__(self, to_browser: int, from_browser: int, deadline: float):
        self.to_browser, self.from_browser, self.deadline = to_browser, from_browser, deadline
        self.buffer, self.next_id, self.events = b"", 0, []

    def send(self, method: str, params: dict | None = None, session: str | None = None) -> int:
        self.next_id += 1
        message = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self.to_browser, json.dumps(message).encode() + b"\0")
        return self.next_id

    def receive(self) -> dict:
        while b"\0" not in self.buffer:
            remaining = self.deadline - time.monotonic()
            if remaining <= 0 or not select.select([self.from_browser], [], [], remaining)[0]:
                raise TimeoutError("Chromium did not answer in time")
            chunk = os.read(self.from_browser, 1 << 16)
            if not chunk:
                raise EOFError("Chromium closed the DevTools pipe")
            self.buffer += chunk
        message, self.buffer = self.buffer.split(b"\0", 1)
        return json.loads(message)

    def call(self, method: str, params: dict | None = None, session: str | None = None) -> dict:
        wanted = self.send(method, params, session)
        while True:
            message = self.receive()
            if message.get("id") == wanted:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message.get("result", {})
            self.events.append(message)

    def wait_for(self, event: str) -> None:
        while not any(e.get("method") == event for e in self.events):
            self.events.append(self.receive())


def load_page(
    url: str,
    timeout: float = 60.0,
    width: int = 1280,
    height: int = 900,
    expressions: dict[str, str] | None = None,
) -> PageLoad:
    """Open `url` in a fresh headless Chromium profile and return what happened.

    `expressions`: name -> JavaScript evaluated in the loaded page (JSON-serializable results), e.g. to
    measure how wide a table is drawn.
    """
    binary = find_chromium()
    if binary is None:
        raise FileNotFoundError("no chromium on PATH")
    to_browser_r, to_browser_w = os.pipe()
    from_browser_r, from_browser_w = os.pipe()
    # Chromium reads commands on fd 3 and writes on fd 4: park both on free fds above 10 (so moving one
    # onto 3 or 4 cannot clobber the other), then move them into place in the child.
    parked_in = fcntl.fcntl(to_browser_r, fcntl.F_DUPFD, 10)
    parked_out = fcntl.fcntl(from_browser_w, fcntl.F_DUPFD, 10)

    def child_fds() -> None:
        os.dup2(parked_in, 3)
        os.dup2(parked_out, 4)

    with tempfile.TemporaryDirectory(prefix="peftbench-chromium-") as profile:
        process = subprocess.Popen(
            [binary, *FLAGS, f"--user-data-dir={profile}", f"--window-size={width},{height}", "about:blank"],
            preexec_fn=child_fds,
            close_fds=False,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for fd in (to_browser_r, from_browser_w, parked_in, parked_out):
            os.close(fd)
        pipe = _Pipe(to_browser_w, from_browser_r, time.monotonic() + timeout)
        try:
            return _inspect(pipe, url, width, height, expressions or {})
        finally:
            with contextlib.suppress(OSError):
                pipe.send("Browser.close")
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            os.close(to_browser_w)
            os.close(from_browser_r)


def _inspect(pipe: _Pipe, url: str, width: int, height: int, expressions: dict[str, str]) -> PageLoad:
    target = pipe.call("Target.createTarget", {"url": "about:blank"})["targetId"]
    session = pipe.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
    for domain in ("Page", "Runtime", "Log"):
        pipe.call(f"{domain}.enable", session=session)
    metrics = {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False}
    pipe.call("Emulation.setDeviceMetricsOverride", metrics, session)
    pipe.call("Page.navigate", {"url": url}, session=session)
    pipe.wait_for("Page.loadEventFired")
    images = pipe.call(
        "Runtime.evaluate",
        {"expression": IMAGES_SCRIPT, "awaitPromise": True, "returnByValue": True},
        session,
    )["result"]["value"]
    title = pipe.call("Runtime.evaluate", {"expression": "document.title", "returnByValue": True}, session)
    values = {
        name: pipe.call("Runtime.evaluate", {"expression": js, "returnByValue": True}, session)["result"].get(
            "value"
        )
        for name, js in expressions.items()
    }
    size = pipe.call("Page.getLayoutMetrics", session=session)["cssContentSize"]
    clip = {"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1}
    shot = pipe.call(
        "Page.captureScreenshot", {"format": "png", "clip": clip, "captureBeyondViewport": True}, session
    )
    load = PageLoad(_errors(pipe.events), images, base64.b64decode(shot["data"]), title["result"]["value"])
    load.values = values
    return load


def _errors(events: list[dict]) -> list[str]:
    errors = []
    for event in events:
        method, params = event.get("method"), event.get("params", {})
        if method == "Runtime.consoleAPICalled" and params.get("type") in {"error", "assert"}:
            errors.append("console: " + " ".join(str(a.get("value", a)) for a in params.get("args", [])))
        elif method == "Runtime.exceptionThrown":
            errors.append("exception: " + json.dumps(params.get("exceptionDetails", {}))[:500])
        elif method == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
            entry = params["entry"]
            errors.append(f"log ({entry.get('source')}): {entry.get('text')} {entry.get('url', '')}")
    return errors


def file_url(path: Path) -> str:
    return path.resolve().as_uri()
