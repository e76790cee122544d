"""Typed inputs for registered functions: check keyword arguments against a function's signature,
and describe a signature as JSON Schema (for agent tools)."""

from __future__ import annotations

import inspect
import types
import typing
from collections.abc import Callable
from typing import Any, Union

_JSON_TYPES = {str: "string", int: "integer", float: "number", bool: "boolean", list: "array", dict: "object"}
_PASSED_BY_ENGINE = {"ctx", "idempotency_key"}


class ArgumentsInvalid(Exception):
    """Keyword arguments that do not fit the called function's signature or annotations."""


def _parameters(fn: Callable) -> list[inspect.Parameter]:
    params = list(inspect.signature(fn).parameters.values())
    if params and params[0].kind in (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD):
        params = params[1:]  # the first parameter receives ctx
    return [p for p in params if p.name not in _PASSED_BY_ENGINE]


def _hints(fn: Callable) -> dict:
    try:
        return typing.get_type_hints(fn)
    except Exception:  # unresolvable annotations: check names only
        return {}


def type_matches(value: Any, hint: Any) -> bool:
    """Whether ``value`` (decoded JSON) fits annotation ``hint``; unknown annotations accept anything."""
    if hint is Any or hint is inspect.Parameter.empty:
        return True
    origin = typing.get_origin(hint)
    if origin in (Union, types.UnionType):
        return any(type_matches(value, arg) for arg in typing.get_args(hint))
    if hint is type(None):
        return value is None
    if origin is typing.Literal:
        return value in typing.get_args(hint)
    base = origin or hint
    if base is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if base is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if base in (str, bool, dict):
        return isinstance(value, base)
    if base in (list, tuple):
        if not isinstance(value, list):
            return False
        args = typing.get_args(hint)
        return not args or base is tuple or all(type_matches(v, args[0]) for v in value)
    return True


def _describe(hint: Any) -> str:
    return getattr(hint, "__name__", None) or str(hint).replace("typing.", "")


def argument_problems(fn: Callable, kwargs: dict, *, skip_types: frozenset[str] = frozenset()) -> list[str]:
    """What is wrong with calling ``fn(ctx, **kwargs)``: unknown or missing names, values of the wrong type.

    Values named in ``skip_types`` (templates not rendered yet) count as present but are not type-checked.
    """
    params = _parameters(fn)
    accepts_any = any(p.kind == inspect.Parameter.VAR_KEYWORD for p in params)
    named = {p.name: p for p in params if p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD,
                                                     inspect.Parameter.KEYWORD_ONLY)}
    accepted = ", ".join(named) or "no arguments"
    problems = []
    unknown = [k for k in kwargs if k not in named]
    if unknown and not accepts_any:
        problems.append(f"unexpected argument(s) {', '.join(map(repr, unknown))} (it accepts: {accepted})")
    missing = [n for n, p in named.items() if p.default is inspect.Parameter.empty and n not in kwargs]
    if missing:
        problems.append(f"missing required argument(s) {', '.join(map(repr, missing))}")
    hints = _hints(fn)
    for key, value in kwargs.items():
        hint = hints.get(key)
        if key in named and key not in skip_types and hint is not None and not type_matches(value, hint):
            problems.append(f"argument {key!r} must be {_describe(hint)}, got {type(value).__name__} "
                            f"{_short(value)}")
    return problems


def check_arguments(fn: Callable, kwargs: dict, *, name: str) -> None:
    """Raise ArgumentsInvalid with a clear message unless ``fn(ctx, **kwargs)`` fits its signature."""
    problems = argument_problems(fn, kwargs)
    if problems:
        raise ArgumentsInvalid(f"{name}: " + "; ".join(problems))


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def json_schema_for(fn: Callable) -> dict:
    """A JSON Schema for the keyword arguments of ``fn`` (ctx and idempotency_key excluded)."""
    hints = _hints(fn)
    properties, required = {}, []
    for p in _parameters(fn):
        if p.kind in (inspect.Parameter.VAR_KEYWORD, inspect.Parameter.VAR_POSITIONAL):
            continue
        properties[p.name] = _schema_for_hint(hints.get(p.name))
        if p.default is inspect.Parameter.empty:
            required.append(p.name)
    schema: dict = {"type": "object", "properties": properties}
    if required:
        schema["required"] = required
    return schema


def _schema_for_hint(hint: Any) -> dict:
    if hint is None:
        return {}
    origin = typing.get_origin(hint)
    if origin in (Union, types.UnionType):
        options = [_schema_for_hint(a) for a in typing.get_args(hint) if a is not type(None)]
        return options[0] if len(options) == 1 else {"anyOf": options}
    if origin is typing.Literal:
        return {"enum": list(typing.get_args(hint))}
    base = origin or hint
    if base in _JSON_TYPES:
        schema = {"type": _JSON_TYPES[base]}
        args = typing.get_args(hint)
        if base is list and args:
            schema["items"] = _schema_for_hint(args[0])
        return schema
    return {}
