"""Keeping hostile or broken data from breaking the engine: what can be stored, and how big it may be.

PostgreSQL refuses NaN and Infinity in JSON and the NUL character (U+0000) in both JSON and text. A
step output, log line or error message holding one would make the transaction that records the
step fail, leaving the step running until its lease expired, and again on every retry. So step
outputs and run inputs are checked before they are stored (and refused with a clear error), and
text that only reports something (errors, tracebacks, log lines) has its NUL characters escaped.

The size limits (see docs/security.md): ``WEFT_MAX_DEFINITION_BYTES`` (workflow definitions),
``WEFT_MAX_NODES`` (nodes per workflow), ``WEFT_MAX_INPUT_BYTES`` (run inputs),
``WEFT_MAX_OUTPUT_BYTES`` (step outputs, also those an operator gives), ``WEFT_MAX_LOG_LINES``
(captured log lines per attempt) and ``WEFT_MAX_BODY_BYTES`` (API request bodies).
"""

from __future__ import annotations

import json

from django.conf import settings

NUL = "\x00"


class OutputInvalid(ValueError):
    """A value that cannot be stored as JSON in PostgreSQL (NaN, Infinity, a NUL character)."""


def json_for_storage(value, *, what: str = "step output") -> str:
    """``value`` encoded as the JSON PostgreSQL will store; raises OutputInvalid for NaN, Infinity or NUL.

    Values that are not JSON at all raise json's own TypeError ("... is not JSON serializable").
    """
    try:
        encoded = json.dumps(value, allow_nan=False)
    except ValueError:
        raise OutputInvalid(f"{what} contains NaN or Infinity, which JSON cannot hold") from None
    if "\\u0000" in encoded and _has_nul(value):
        raise OutputInvalid(f"{what} contains a NUL character (\\u0000), which PostgreSQL cannot store")
    return encoded


def _has_nul(value) -> bool:
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if NUL in item:
                return True
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, (list, tuple)):
            stack.extend(item)
    return False


def storable_text(text: str) -> str:
    """``text`` with NUL characters written as ``\\x00``, so PostgreSQL can store it."""
    return text.replace(NUL, "\\x00") if NUL in text else text


def output_problem(value) -> str | None:
    """Why ``value`` cannot be a step output (not storable, or over WEFT_MAX_OUTPUT_BYTES), or None."""
    try:
        size = len(json_for_storage(value).encode("utf-8"))
    except OutputInvalid as exc:
        return str(exc)
    except TypeError as exc:
        return f"step output is not JSON-serialisable: {exc}"
    limit = settings.WEFT_MAX_OUTPUT_BYTES
    if size > limit:
        return f"step output is {size} bytes; the limit (WEFT_MAX_OUTPUT_BYTES) is {limit}"
    return None
