"""Sandboxed templates for node configs and edge conditions (Jinja2's SandboxedEnvironment).

A string that is exactly one ``{{ expression }}`` evaluates to the expression's
native value (a list stays a list); any other string renders to text. No node
ever evaluates user text as Python. The sandbox is bounded in size, work and time
and outputs JSON data only (``engine.templating.sandbox``).
"""

from __future__ import annotations

import math
import re
from typing import Any

from jinja2 import StrictUndefined, TemplateSyntaxError, Undefined

from engine.exceptions import TemplateFailed
from engine.templating import sandbox


class _Environment(sandbox.BoundedSandbox):
    """``output.items`` means the key "items" of a JSON object, not the dict method of that name."""

    def getattr(self, obj, attribute):
        if isinstance(obj, dict) and attribute in obj:
            return obj[attribute]
        return super().getattr(obj, attribute)


_env = _Environment(undefined=StrictUndefined, autoescape=False)
_SINGLE = re.compile(r"^\s*\{\{(?P<expr>.*?)\}\}\s*$", re.S)
_NODE_REF = re.compile(r"nodes\s*(?:\.\s*([A-Za-z_][A-Za-z0-9_]*)|\[\s*['\"]([A-Za-z_][A-Za-z0-9_-]*)['\"]\s*\])")


def is_template(value: Any) -> bool:
    return isinstance(value, str) and ("{{" in value or "{%" in value)


def has_templates(value: Any) -> bool:
    """Whether any string inside ``value`` (dicts and lists recursively) is a template."""
    if isinstance(value, dict):
        return any(has_templates(v) for v in value.values())
    if isinstance(value, list):
        return any(has_templates(v) for v in value)
    return is_template(value)


def render(value: Any, context: dict, *, path: str = "config", later: re.Pattern | None = None) -> Any:
    """Render every template string inside ``value`` (dicts and lists recursively).

    A value whose path matches ``later`` (searched in the path, e.g. ``\\.tools\\[\\d+\\]\\.requires_approval$``)
    is left as written: the node renders it itself, with values only it has (a tool call's arguments)."""
    if later is not None and later.search(path):
        return value
    if isinstance(value, dict):
        return {k: render(v, context, path=f"{path}.{k}", later=later) for k, v in value.items()}
    if isinstance(value, list):
        return [render(v, context, path=f"{path}[{i}]", later=later) for i, v in enumerate(value)]
    if not is_template(value):
        return value
    try:
        with sandbox.budget():
            single = _SINGLE.match(value)
            if single and "{{" not in single.group("expr"):
                result = _env.compile_expression(single.group("expr"), undefined_to_none=False)(**context)
                if not isinstance(result, Undefined):
                    size = sandbox.measure(result, data_only=False)
                    if size > sandbox.MAX_SIZE:
                        raise sandbox.TemplateLimitExceeded(f"template value is larger than {sandbox.MAX_SIZE} "
                                                            "characters")
                return _json_value(result, path)
            return _render_text(value, context)
    except TemplateFailed:
        raise
    except Exception as exc:  # whatever a template does wrong (a filter's or a global's own errors too)
        raise TemplateFailed(f"template at {path} failed: {type(exc).__name__}: {exc}",
                             details=[{"path": path, "template": value[:500]}]) from None


def _render_text(value: str, context: dict) -> str:
    """The template's text, stopped as soon as it grows past the sandbox's size bound."""
    parts, size = [], 0
    for part in _env.from_string(value).generate(**context):
        size += len(part)
        if size > sandbox.MAX_SIZE:
            raise sandbox.TemplateLimitExceeded(f"template text is longer than {sandbox.MAX_SIZE} characters")
        parts.append(part)
    return "".join(parts)


def _json_value(value: Any, path: str) -> Any:
    """A template's native result must be plain JSON data (never an undefined value, a function or a class)."""
    if isinstance(value, Undefined):
        value._fail_with_undefined_error()
    if isinstance(value, float) and not math.isfinite(value):
        raise TemplateFailed(f"template at {path} produced {value}, which JSON cannot hold",
                             details=[{"path": path}])
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    if isinstance(value, (list, tuple)):
        return [_json_value(v, path) for v in value]
    if isinstance(value, dict):
        return {str(k): _json_value(v, path) for k, v in value.items()}
    raise TemplateFailed(f"template at {path} produced a {type(value).__name__}, not JSON data",
                         details=[{"path": path}])


def evaluate(expression: str, context: dict, *, path: str = "condition") -> Any:
    """Evaluate one expression (an edge condition)."""
    text = expression.strip()
    if text.startswith("{{") and text.endswith("}}"):
        text = text[2:-2]
    return render("{{" + text + "}}", context, path=path)


def check_syntax(value: Any) -> str | None:
    """The syntax error in a template or condition, or None. For validation before saving."""
    strings = _strings(value)
    for s in strings:
        try:
            _env.parse(s)
        except TemplateSyntaxError as exc:
            return f"template syntax error: {exc.message} (line {exc.lineno})"
        except RecursionError:
            return "template is nested too deeply"
    return None


def check_condition(expression: str) -> str | None:
    text = expression.strip()
    if text.startswith("{{") and text.endswith("}}"):
        text = text[2:-2]
    return check_syntax("{{" + text + "}}")


def referenced_nodes(value: Any) -> set[str]:
    """Node ids a template refers to as ``nodes.<id>`` or ``nodes['<id>']``."""
    found: set[str] = set()
    for s in _strings(value):
        if is_template(s):
            for a, b in _NODE_REF.findall(s):
                found.add(a or b)
    return found


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []
