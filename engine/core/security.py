"""Keeping hostile or broken data from breaking the engine: what can be stored, and how big it may be.

PostgreSQL refuses NaN and Infinity in JSON, and the NUL character (U+0000) and lone UTF-16
surrogates (U+D800-DFFF, which JSON allows as escapes) in both JSON and text. A step output, log
line or error message holding one would make the transaction that records the step fail, leaving
the step running until its lease expired, and again on every retry. So step outputs and run inputs
are checked before they are stored (and refused with a clear error naming where), and text that
only reports something (errors, tracebacks, log lines) has its NUL characters and surrogates escaped.

``json_problem`` walks a parsed JSON value without recursion and says what is wrong with it, if
anything: too deep (request bodies and imported files allow ``MAX_JSON_DEPTH`` levels), a NUL or a
lone surrogate, with the path of the string that holds it.

The size limits (see docs/security.md): ``WEFT_MAX_DEFINITION_BYTES`` (workflow definitions),
``WEFT_MAX_NODES`` (nodes per workflow), ``WEFT_MAX_INPUT_BYTES`` (run inputs),
``WEFT_MAX_OUTPUT_BYTES`` (step outputs, also those an operator gives), ``WEFT_MAX_LOG_LINES``
(captured log lines per attempt) and ``WEFT_MAX_BODY_BYTES`` (API request bodies).
"""

from __future__ import annotations

import json
import re

from django.conf import settings

NUL = "\x00"
SURROGATE = re.compile("[\ud800-\udfff]")
MAX_JSON_DEPTH = 100  # levels of nested objects and arrays in a request body or an imported file
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


class OutputInvalid(ValueError):
    """A value that cannot be stored as JSON in PostgreSQL (NaN, Infinity, a NUL character, a lone surrogate)."""


def json_for_storage(value, *, what: str = "step output") -> str:
    """``value`` encoded as the JSON PostgreSQL will store; raises OutputInvalid for NaN, Infinity, NUL or a
    lone surrogate (the message names the path of the string that holds it).

    Values that are not JSON at all raise json's own TypeError ("... is not JSON serializable").
    """
    try:
        encoded = json.dumps(value, allow_nan=False)
    except ValueError:
        raise OutputInvalid(f"{what} contains NaN or Infinity, which JSON cannot hold") from None
    if "\\u0000" in encoded and _has_nul(value):
        raise OutputInvalid(f"{what} contains a NUL character (\\u0000), which PostgreSQL cannot store")
    if "\\ud" in encoded:  # json writes surrogates (and characters beyond U+FFFF, as pairs) as \udxxx
        problem = json_problem(value, what=what)
        if problem:
            raise OutputInvalid(problem)
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


def json_problem(value, *, what: str = "step output", max_depth: int | None = None) -> str | None:
    """Why PostgreSQL cannot store ``value`` (a NUL, a lone surrogate) or it is nested deeper than
    ``max_depth`` objects and arrays, naming the path (``$.items[2].text``); None if nothing is wrong."""
    stack = [(value, 1, None)]  # (item, its depth if it is an object or array, its path as (parent, key))
    while stack:
        item, depth, path = stack.pop()
        if isinstance(item, str):
            problem = _string_problem(item)
            if problem:
                return f"{what} at {_path_text(path)} contains {problem}, which PostgreSQL cannot store"
            continue
        if isinstance(item, dict):
            children = list(item.items())
        elif isinstance(item, (list, tuple)):
            children = list(enumerate(item))
        else:
            continue
        if max_depth is not None and depth > max_depth:
            return nesting_problem(what=what, max_depth=max_depth)
        for key, child in reversed(children):  # reversed: the first problem in document order is found first
            if isinstance(key, str):
                problem = _string_problem(key)
                if problem:
                    return f"{what} at {_path_text(path)} contains {problem} in a key, which PostgreSQL cannot store"
            stack.append((child, depth + 1, (path, key)))
    return None


def nesting_problem(*, what: str, max_depth: int = MAX_JSON_DEPTH) -> str:
    return f"{what} is nested deeper than {max_depth} levels of objects and arrays"


def _string_problem(text: str) -> str | None:
    if NUL in text:
        return "a NUL character (\\u0000)"
    if not text.isascii():
        found = SURROGATE.search(text)
        if found:
            return f"a lone surrogate (U+{ord(found.group()):04X})"
    return None


def _path_text(path) -> str:
    keys = []
    while path is not None:
        path, key = path
        keys.append(key)
    parts = ["$"]
    for key in reversed(keys):
        if isinstance(key, int):
            parts.append(f"[{key}]")
        elif isinstance(key, str) and _IDENTIFIER.match(key):
            parts.append(f".{key}")
        else:
            parts.append(f"[{json.dumps(str(key))}]")
    return "".join(parts)


def storable_text(text: str) -> str:
    """``text`` with NUL characters written as ``\\x00`` and lone surrogates as ``\\udxxx``, so PostgreSQL
    can store it."""
    if NUL in text:
        text = text.replace(NUL, "\\x00")
    if not text.isascii() and SURROGATE.search(text):
        text = SURROGATE.sub(lambda found: f"\\u{ord(found.group()):04x}", text)
    return text


class OutputTooLarge(Exception):
    """A step output over WEFT_MAX_OUTPUT_BYTES, or one JSON cannot encode: retrying cannot fix it."""


def output_check(value) -> str:
    """``value`` as the JSON a step output is stored as. Raises OutputInvalid for a value PostgreSQL cannot store
    (NaN, Infinity, NUL, a lone surrogate), OutputTooLarge for one JSON cannot encode or over
    WEFT_MAX_OUTPUT_BYTES. The encoding is ASCII (non-ASCII characters are escaped), so its length is its size in
    bytes."""
    try:
        encoded = json_for_storage(value)
    except TypeError as exc:  # the encoder's own: a value JSON has no form for (a set, an object)
        raise OutputTooLarge(f"step output is not JSON-serialisable: {exc}") from None
    limit = settings.WEFT_MAX_OUTPUT_BYTES
    if len(encoded) > limit:
        raise OutputTooLarge(f"step output is {len(encoded)} bytes; the limit (WEFT_MAX_OUTPUT_BYTES) is {limit}")
    return encoded


def output_problem(value) -> str | None:
    """Why ``value`` cannot be a step output (not storable, or over WEFT_MAX_OUTPUT_BYTES), or None."""
    try:
        output_check(value)
    except (OutputInvalid, OutputTooLarge) as exc:
        return str(exc)
    return None
