"""Structured logs for Weft's own processes.

Every line names the step being executed -- run id, step id, node id, attempt, queue -- and the
worker (``host:pid``), taken from a context variable set around each attempt (``log_context``, entered
by ``hooks.observe_attempt``, which engine.worker.run calls). ``JsonFormatter`` writes one JSON object per
line (for log collectors); ``TextFormatter`` writes a short human-readable line (for a terminal, e.g. ``make run``).
``WEFT_LOG_FORMAT`` chooses: ``json``, ``text`` or ``auto`` (text on a terminal, else JSON).
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import os
import socket
import sys
import time

from engine.ids import short_id

FIELDS = ("run_id", "step_id", "node_id", "attempt", "queue", "worker")
FORMATS = ("auto", "json", "text")
# Longest message written to the process log; a node that logs megabytes per line is cut here.
MAX_MESSAGE_CHARS = 10_000

_context: contextvars.ContextVar[dict] = contextvars.ContextVar("weft_log_context", default={})  # noqa: B039
_HOST = socket.gethostname()


@contextlib.contextmanager
def log_context(**fields):
    """Add ``fields`` (from FIELDS) to every log line written in this context (this thread or task)."""
    token = _context.set({**_context.get(), **{k: v for k, v in fields.items() if v is not None}})
    try:
        yield
    finally:
        _context.reset(token)


def current_context() -> dict:
    """The six fields for a line written now: the bound context, else this process's queue and worker."""
    bound = _context.get()
    return {
        "run_id": bound.get("run_id"),
        "step_id": bound.get("step_id"),
        "node_id": bound.get("node_id"),
        "attempt": bound.get("attempt"),
        # A django-q2 cluster process serves one queue (Q_CLUSTER_NAME); others serve none.
        "queue": bound.get("queue") or os.environ.get("Q_CLUSTER_NAME"),
        "worker": bound.get("worker") or f"{_HOST}:{os.getpid()}",
    }


def resolve_format(value: str | None, stream=None) -> str:
    """``json`` or ``text`` for a WEFT_LOG_FORMAT value; ``auto`` is text on a terminal, else JSON."""
    value = (value or "auto").strip().lower()
    if value not in FORMATS:
        raise ValueError(f"must be one of {', '.join(FORMATS)}, got {value!r}")
    if value != "auto":
        return value
    stream = stream or sys.stderr
    try:
        return "text" if stream.isatty() else "json"
    except (AttributeError, ValueError):
        return "json"


def _message(record: logging.LogRecord) -> str:
    message = record.getMessage()
    if len(message) > MAX_MESSAGE_CHARS:
        message = f"{message[:MAX_MESSAGE_CHARS]}... [{len(message) - MAX_MESSAGE_CHARS} characters truncated]"
    return message


def _trace_ids() -> dict:
    from engine.observability import tracing

    return tracing.current_ids()


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, the six context fields, trace ids, exception."""

    def format(self, record: logging.LogRecord) -> str:
        line = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "msg": _message(record),
            **current_context(),
            **_trace_ids(),
        }
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)[-20_000:]
        elif record.exc_text:
            line["exc"] = record.exc_text[-20_000:]
        return json.dumps(line, default=str, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """``07:16:52.123 INFO  engine.worker.executor [run 1a2b3c4d fetch#2 default] message``"""

    def format(self, record: logging.LogRecord) -> str:
        ctx = current_context()
        where = ""
        if ctx["run_id"]:
            step = f" {ctx['node_id']}#{ctx['attempt']}" if ctx["node_id"] else ""
            where = f" [run {short_id(ctx['run_id'])}{step}{' ' + ctx['queue'] if ctx['queue'] else ''}]"
        stamp = time.strftime("%H:%M:%S", time.localtime(record.created)) + f".{int(record.msecs):03d}"
        text = f"{stamp} {record.levelname:<7} {record.name}{where} {_message(record)}"
        if record.exc_info:
            text += "\n" + self.formatException(record.exc_info)
        return text
