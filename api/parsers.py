"""Request body parsing."""

from __future__ import annotations

from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

from engine.core.security import MAX_JSON_DEPTH, json_problem, nesting_problem


def _has_nul(value) -> bool:
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                return True
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


class StrictJSONParser(JSONParser):
    """JSON that PostgreSQL can store: no NUL characters or lone surrogates (U+D800-DFFF) in strings, and
    at most MAX_JSON_DEPTH levels of nesting."""

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError:  # json's decoder gives up far below what a body may hold
            raise ParseError(f"JSON parse error - {nesting_problem(what='the body')}") from None
        if _has_nul(data):
            raise ParseError("JSON parse error - strings may not contain NUL (\\u0000) characters")
        problem = json_problem(data, what="the body", max_depth=MAX_JSON_DEPTH)
        if problem:
            raise ParseError(f"JSON parse error - {problem}")
        return data
