"""Built-in node types: ``python`` (registered functions, typed inputs) and ``noop``."""

from __future__ import annotations

from engine.core.registry import get_task, node_type
from engine.exceptions import TaskNotFound
from engine.nodes.signatures import argument_problems, check_arguments
from engine.templating import templates as templating


@node_type("python", label="Python function")
class PythonNode:
    """Call a Python function registered in code with ``@weft.task``. Never code typed into a definition.

    The function is called as ``fn(ctx, **kwargs)``; the kwargs (templated) are checked against its
    signature and type annotations before the call, so a wrong or missing argument fails with a clear
    message instead of deep inside the function.
    """

    config_schema = {
        "type": "object",
        "required": ["function"],
        "additionalProperties": False,
        "properties": {
            "function": {"type": "string", "minLength": 1, "description": "Name of a registered @weft.task"},
            "kwargs": {"type": "object", "description": "Keyword arguments (templated)", "default": {}},
        },
    }
    outputs = {"description": "whatever the function returns (JSON)"}

    def run(self, ctx, config: dict):
        name = config["function"]
        fn = get_task(name).fn
        kwargs = config.get("kwargs") or {}
        check_arguments(fn, kwargs, name=f"function {name!r}")
        return fn(ctx, **kwargs)

    @staticmethod
    def repeat_risks(config: dict) -> list[str]:
        """A function registered with ``safe_to_repeat=False``."""
        try:
            registered = get_task(config.get("function", ""))
        except (TaskNotFound, TypeError):
            return []
        return [] if registered.safe_to_repeat else [f"function {registered.name}"]

    def validate_config(self, config: dict, *, node_id: str, upstream_ids: set[str], graph) -> list:
        name = config.get("function")
        if not isinstance(name, str):
            return []
        try:
            fn = get_task(name).fn
        except TaskNotFound:
            return [("function", f"function {name!r} is not registered (register it with @weft.task in a module "
                                 "listed in WEFT_TASK_MODULES)")]
        kwargs = config.get("kwargs") or {}
        if not isinstance(kwargs, dict):
            return []
        templated = frozenset(k for k, v in kwargs.items() if templating.is_template(v))
        problems = argument_problems(fn, kwargs, skip_types=templated)
        return [("kwargs", f"function {name!r}: " + "; ".join(problems))] if problems else []


@node_type("noop", label="No-op", default_queue="fast")
class NoopNode:
    """Does nothing and succeeds; passes its config through as output."""

    config_schema = {"type": "object", "properties": {}, "additionalProperties": False}
    outputs = {"description": "the node's config ({} for an empty config)"}

    def run(self, ctx, config: dict):
        return config
