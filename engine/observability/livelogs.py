"""Live step logs: while an attempt runs, the lines it has captured so far are appended to its
Attempt row every WEFT_LOG_FLUSH_S seconds, so the step drawer and ``GET /api/runs/{id}/logs/``
show them before the attempt ends. When it ends, engine.worker.record writes the complete list.

One flusher thread per worker process serves every running attempt; an attempt shorter than
the interval never causes a write, and the thread holds no database connection between passes.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from dataclasses import dataclass

from django.conf import settings
from django.db import DatabaseError, connection

from engine import statements
from engine.models import Attempt

log = logging.getLogger(__name__)

SQL = statements.load(__file__, "sql/livelogs.sql")


@dataclass
class _Watched:
    step_id: int
    attempt: int
    capture: object  # engine.worker.capture.LogCapture: .lines grows while the node runs
    sent: int = 0


class _Flusher(threading.Thread):
    def __init__(self):
        super().__init__(name="weft-live-logs", daemon=True)
        self.lock = threading.Lock()
        self.watched: dict[tuple[int, int], _Watched] = {}
        self.wake = threading.Event()

    def run(self) -> None:
        while True:
            self.wake.wait(settings.WEFT_LOG_FLUSH_S or 1.0)
            self.wake.clear()
            with self.lock:
                items = list(self.watched.values())
            wrote = [self.flush(item) for item in items]
            if any(wrote):
                connection.close()  # hold no connection between passes

    def flush(self, item: _Watched) -> bool:
        """Append the lines captured since the last pass; returns whether it used the database."""
        lines = item.capture.lines
        count = len(lines)
        if count <= item.sent:
            return False
        try:
            with connection.cursor() as cur:
                statements.execute(cur, SQL["attempt_logs_append"], {
                    "lines": json.dumps(lines[item.sent:count]), "step": item.step_id, "attempt": item.attempt,
                    "running": Attempt.Outcome.RUNNING})
        except DatabaseError:
            log.warning("could not write live logs of step %s", item.step_id, exc_info=True)
            return True
        item.sent = count
        return True


_flusher: _Flusher | None = None
_flusher_pid = 0
_start_lock = threading.Lock()


def watch(*, step_id: int, attempt: int, capture) -> None:
    """Start appending ``capture``'s lines to the attempt's row while it runs (no-op if WEFT_LOG_FLUSH_S is 0)."""
    global _flusher, _flusher_pid
    if not settings.WEFT_LOG_FLUSH_S:
        return
    if _flusher is None or _flusher_pid != os.getpid():  # a forked worker does not inherit the thread
        with _start_lock:
            if _flusher is None or _flusher_pid != os.getpid():
                _flusher = _Flusher()
                _flusher_pid = os.getpid()
                _flusher.start()
    with _flusher.lock:
        _flusher.watched[(step_id, attempt)] = _Watched(step_id, attempt, capture)


def unwatch(*, step_id: int, attempt: int) -> None:
    if _flusher is not None and _flusher_pid == os.getpid():
        with _flusher.lock:
            _flusher.watched.pop((step_id, attempt), None)
