"""Built-in node types."""

from __future__ import annotations

from engine.nodes.registry import get_task, node_type


@node_type("python", label="Python function")
class PythonNode:
    """Call a Python function registered in code with ``@weft.task``. Never code typed into a definition."""

    config_schema = {
        "type": "object",
        "required": ["function"],
        "additionalProperties": False,
        "properties": {
            "function": {"type": "string", "minLength": 1, "description": "Name of a registered @weft.task"},
            "kwargs": {"type": "object", "description": "Keyword arguments (templated)", "default": {}},
        },
    }

    def run(self, ctx, inputs: dict):
        fn = get_task(ctx.config["function"]).fn
        return fn(ctx, **(inputs.get("kwargs") or {}))


@node_type("noop", label="No-op", default_queue="fast")
class NoopNode:
    """Does nothing and succeeds; passes its inputs through as output."""

    config_schema = {"type": "object", "properties": {}, "additionalProperties": False}

    def run(self, ctx, inputs: dict):
        return inputs
