"""JSON written in C, with JSON text read from the database embedded as it is.

A 1,000-step run's detail is 20,000 values. Written by DRF's serializers and the standard library's encoder, each
JSON column was parsed from its text, walked as Python objects and encoded again, and each timestamp formatted in
Python: 53 ms of CPU a request. Here a JSON column stays the text PostgreSQL sent (``RawJson``), and orjson writes
the rest, timestamps included, as DRF writes them (``tests/api/test_rawjson.py``).

``dumps`` is what the API's renderer, the run page's props and the run socket's messages use. A value orjson does
not write (an integer past 64 bits, a lazy translation) goes through DRF's own encoder, as before.
"""

from __future__ import annotations

import json
from typing import Any

import orjson
from rest_framework.renderers import JSONRenderer
from rest_framework.utils.encoders import JSONEncoder


class RawJson:
    """JSON text (``str`` or ``bytes``), written into a document as it is. ``value`` parses it."""

    __slots__ = ("text",)

    def __init__(self, text: str | bytes):
        self.text = text

    def value(self) -> Any:
        return json.loads(self.text)

    def __repr__(self) -> str:
        return f"RawJson({self.text!r})"


def raw_or_none(text: str | bytes | None) -> RawJson | None:
    """A nullable JSON column read as text: SQL NULL is None, anything else its text."""
    return None if text is None else RawJson(text)


_drf = JSONEncoder(ensure_ascii=False, allow_nan=False)


def _default(value):
    if isinstance(value, RawJson):
        return orjson.Fragment(value.text)
    return _drf.default(value)


class _Parsed(JSONEncoder):
    """DRF's encoder, with RawJson parsed: the way for a document orjson refused."""

    def default(self, value):
        return value.value() if isinstance(value, RawJson) else super().default(value)


def dumps(value, *, utc_z: bool = True) -> bytes:
    """``value`` as compact UTF-8 JSON. Timestamps as ISO 8601 in their own offset, which ``utc_z`` writes as
    ``Z`` when it is zero (as DRF does; ``False``: ``+00:00``, as Python's isoformat does). A float that is not a
    number is written as null (DRF's STRICT_JSON would refuse it; JSON columns cannot hold one)."""
    try:
        return orjson.dumps(value, default=_default, option=orjson.OPT_UTC_Z if utc_z else 0)
    except orjson.JSONEncodeError:
        # An integer past 64 bits: the standard library writes it.
        return json.dumps(value, cls=_Parsed, ensure_ascii=False, allow_nan=False,
                          separators=(",", ":")).encode()


class RawJsonRenderer(JSONRenderer):
    """DRF's JSON renderer; a response whose top level holds a RawJson (a run's detail) is written by ``dumps``."""

    def render(self, data, accepted_media_type=None, renderer_context=None):
        if isinstance(data, dict) and any(isinstance(v, RawJson) for v in data.values()):
            return dumps(data)
        return super().render(data, accepted_media_type, renderer_context)
