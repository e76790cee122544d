"""Log capture: a node's log records and prints during one attempt, bounded, for the attempt's row."""

from __future__ import annotations

import io
import logging
import threading
import time

from engine.core.security import storable_text


class LogCapture(logging.Handler):
    """Collects a node's log records and prints for one attempt, bounded in lines and line length."""

    MAX_LINE = 10_000

    def __init__(self, max_lines: int):
        super().__init__(level=logging.DEBUG)
        self.max_lines = max_lines
        self.lines: list[dict] = []
        self.dropped = 0
        self._thread = threading.get_ident()

    def emit(self, record: logging.LogRecord) -> None:
        if record.thread != self._thread or record.name.startswith(("django", "engine.worker")):
            return
        self.add(record.levelname, record.getMessage())

    def add(self, level: str, message: str) -> None:
        if len(self.lines) >= self.max_lines:
            self.dropped += 1
            return
        if len(message) > self.MAX_LINE:
            message = message[: self.MAX_LINE] + f"... [{len(message) - self.MAX_LINE} characters truncated]"
        message = storable_text(message)
        self.lines.append({"t": round(time.time(), 3), "level": level, "msg": message})

    def result(self) -> list[dict]:
        if self.dropped:
            return [*self.lines, {"t": round(time.time(), 3), "level": "WARNING",
                                  "msg": f"[{self.dropped} more log lines dropped: WEFT_MAX_LOG_LINES is "
                                         f"{self.max_lines}]"}]
        return self.lines


class PrintSink(io.TextIOBase):
    """``print`` inside a node: each line goes to the attempt's LogCapture as a PRINT line."""

    def __init__(self, capture: LogCapture):
        self.capture = capture
        self._buffer = ""

    def write(self, text: str) -> int:
        self._buffer += text
        while "\n" in self._buffer:
            line, self._buffer = self._buffer.split("\n", 1)
            self.capture.add("PRINT", line)
        if len(self._buffer) > LogCapture.MAX_LINE:
            self.capture.add("PRINT", self._buffer)
            self._buffer = ""
        return len(text)

    def flush_rest(self) -> None:
        if self._buffer:
            self.capture.add("PRINT", self._buffer)
            self._buffer = ""
