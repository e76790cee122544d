"""JSON-Schema errors in words for people: "`url` is required", "`timeout_s` must be a number", "`foo` is not
a known field", naming the field by its path inside the object checked (a node's config, a node, the
definition) rather than the validator's wording and the whole JSON path (the issue's ``path`` keeps that).

Plain Python, no Django imports (engine.core.graph uses it).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any

from jsonschema.exceptions import ValidationError

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_TYPES = {"string": "a string", "number": "a number", "integer": "a whole number", "boolean": "true or false",
          "object": "an object", "array": "a list", "null": "null"}
_MAX_VALUES = 12


def field_path(parts: Iterable[Any]) -> str:
    """['retry', 'max_attempts'] -> 'retry.max_attempts'; [ 'items', 2, 'name'] -> 'items[2].name'."""
    out = ""
    for p in parts:
        if isinstance(p, int):
            out += f"[{p}]"
        elif _IDENT.match(str(p)):
            out += f".{p}" if out else str(p)
        else:
            out += f"[{json.dumps(p, ensure_ascii=False)}]"
    return out


def _code(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return f"`{text}`"


def _one_of(values: list) -> str:
    shown = ", ".join(_code(v) for v in values[:_MAX_VALUES])
    return shown + (f" (or {len(values) - _MAX_VALUES} more)" if len(values) > _MAX_VALUES else "")


def _extra_keys(err: ValidationError) -> list[str]:
    """The keys of an object its schema does not allow (additionalProperties / unevaluatedProperties: false)."""
    instance, schema = err.instance, err.schema
    if not isinstance(instance, dict):
        return []
    known = set(schema.get("properties", {}))
    patterns = [re.compile(p) for p in schema.get("patternProperties", {})]
    return [k for k in instance if k not in known and not any(p.search(k) for p in patterns)]


def _missing_key(err: ValidationError) -> str | None:
    """The property a ``required`` error is about (jsonschema reports one error per missing property)."""
    if not isinstance(err.instance, dict) or not isinstance(err.validator_value, list):
        return None
    for key in err.validator_value:
        if key not in err.instance and err.message == f"{key!r} is a required property":
            return key
    return None


# Validators whose message is a bound on a number: "must be at least 3".
_BOUNDS = {"minimum": "at least", "maximum": "at most", "exclusiveMinimum": "greater than",
           "exclusiveMaximum": "less than", "multipleOf": "a multiple of"}
# Validators whose message is a bound on a size: "must have at most 3 items" (a minimum of one: "must not be empty").
_SIZES = {"minLength": ("be at least", "character"), "maxLength": ("be at most", "character"),
          "minItems": ("have at least", "item"), "maxItems": ("have at most", "item"),
          "minProperties": ("have at least", "field"), "maxProperties": ("have at most", "field")}


def _count(n: int, what: str) -> str:
    return f"{n} {what}" if n == 1 else f"{n} {what}s"


def describe(err: ValidationError, *, base: Iterable[Any] = (), whole: str = "the value") -> str:
    """``err`` in words, naming the field by its path below ``base`` (the part of ``err.absolute_path`` that
    locates the object the message is about); ``whole`` names that object when the error is about all of it."""
    parts = list(err.absolute_path)[len(list(base)):]
    name = f"`{field_path(parts)}`" if parts else whole
    v, value = err.validator, err.validator_value
    if v == "required":
        key = _missing_key(err)
        if key is not None:
            return f"`{field_path([*parts, key])}` is required"
    elif v in ("additionalProperties", "unevaluatedProperties") and value is False:
        extra = _extra_keys(err)
        if extra:
            fields = ", ".join(f"`{field_path([*parts, k])}`" for k in extra)
            return f"{fields} {'is not a known field' if len(extra) == 1 else 'are not known fields'}"
    elif v == "type":
        types = value if isinstance(value, list) else [value]
        return f"{name} must be {' or '.join(_TYPES.get(t, t) for t in types)}"
    elif v == "enum":
        return f"{name} must be one of {_one_of(list(value))}"
    elif v == "const":
        return f"{name} must be {_code(value)}"
    elif v in _BOUNDS:
        return f"{name} must be {_BOUNDS[v]} {value}"
    elif v in _SIZES:
        verb, unit = _SIZES[v]
        if value == 1 and v.startswith("min"):
            return f"{name} must not be empty"
        return f"{name} must {verb} {_count(value, unit)}"
    elif v == "uniqueItems" and value:
        return f"{name} must not list the same item twice"
    elif v == "minProperties":
        return f"{name} must not be empty" if value == 1 else f"{name} must have at least {_count(value, 'field')}"
    elif v == "maxProperties":
        return f"{name} must have at most {_count(value, 'field')}"
    elif v == "pattern":
        return f"{name} must match the pattern `{value}`"
    elif v == "format":
        return f"{name} must be a valid {value}"
    elif v in ("oneOf", "anyOf"):
        return f"{name} does not match any of the forms it may take"
    return f"{name}: {err.message}"
