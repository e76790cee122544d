"""The two expression languages of triggers: a Weft template (engine.templating) or a JMESPath expression,
for a webhook's mapping (body -> run inputs) and an event trigger's filter (payload -> true or false)."""

from __future__ import annotations

from typing import Any

import jmespath
from jmespath.exceptions import JMESPathError

from engine.exceptions import TemplateFailed, TriggerInvalid
from engine.templating import templates

LANGUAGES = ("template", "jmespath")


def _invalid(field: str, message: str) -> TriggerInvalid:
    return TriggerInvalid(f"{field}: {message}", details=[{"field": field, "message": message}])


def expression_check(value: Any, *, language: str, field: str, condition: bool = False) -> None:
    """Raise TriggerInvalid naming ``field`` unless ``value`` is a valid expression of ``language`` (a
    condition, for ``condition``)."""
    if language not in LANGUAGES:
        raise _invalid(f"{field}_language", f"must be one of {', '.join(LANGUAGES)}, got {language!r}")
    if language == "jmespath":
        if not isinstance(value, str) or not value.strip():
            raise _invalid(field, "a JMESPath expression is a non-empty string")
        try:
            jmespath.compile(value)
        except JMESPathError as exc:
            raise _invalid(field, f"invalid JMESPath expression: {exc}") from None
        return
    try:
        problem = templates.check_condition(value) if condition else templates.check_syntax(value)
    except (ValueError, MemoryError) as exc:  # e.g. an integer literal of more digits than Python converts
        problem = f"cannot be parsed: {exc}"
    if condition and (not isinstance(value, str) or not value.strip()):
        problem = "a filter is a non-empty expression such as payload.priority == 'high'"
    if problem:
        raise _invalid(field, problem)


def expression_apply(value: Any, *, language: str, data: dict, field: str, condition: bool = False) -> Any:
    """Evaluate ``value`` over ``data``; a failure raises TriggerInvalid naming ``field``."""
    try:
        if language == "jmespath":
            return jmespath.search(value, data)
        if condition:
            return templates.evaluate(value, data, path=field)
        return templates.render(value, data, path=field)
    except JMESPathError as exc:
        raise _invalid(field, f"JMESPath expression failed: {exc}") from None
    except TemplateFailed as exc:
        raise _invalid(field, exc.message) from None
