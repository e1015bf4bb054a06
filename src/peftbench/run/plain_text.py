"""A run's output as plain text: colour and cursor codes are stripped when it goes to a file.

Some libraries colour their output even when it is not a terminal (transformers prints its model
LOAD REPORT heading in ANSI bold unconditionally), which leaves escape codes in `log.txt` and in
the scheduler's log files. `plain_text_output` wraps stdout and stderr of the run's process, so
whatever writes to them through Python lands as plain text. It must run before transformers is
imported: the logging handlers libraries create keep the stream they found then.
"""

from __future__ import annotations

import re
import sys
from typing import Any, TextIO

ANSI_ESCAPE = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]")  # CSI sequences: colours, bold, cursor moves


class PlainTextStream:
    """A text stream that writes to another one with every ANSI escape sequence removed."""

    def __init__(self, stream: TextIO):
        self.stream = stream

    def write(self, text: str) -> int:
        self.stream.write(ANSI_ESCAPE.sub("", text))
        return len(text)

    def writelines(self, lines: Any) -> None:
        for line in lines:
            self.write(line)

    def isatty(self) -> bool:
        return False

    def __getattr__(self, name: str) -> Any:  # flush, fileno, encoding, ...: the wrapped stream's
        return getattr(self.stream, name)


def plain_text_output() -> None:
    """Wrap sys.stdout and sys.stderr in PlainTextStream where they are not a terminal."""
    for name in ("stdout", "stderr"):
        stream = getattr(sys, name)
        if stream is None or isinstance(stream, PlainTextStream) or stream.isatty():
            continue
        setattr(sys, name, PlainTextStream(stream))
