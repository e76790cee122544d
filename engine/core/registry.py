"""Node-type and task registries. Plain Python (no Django), so graph validation can use them.

Node types register with ``@node_type``; Python functions that a ``python``
node may call register with ``@task`` (also exported as ``weft.task``).
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from engine.exceptions import NodeTypeNotFound, TaskNotFound


@dataclass
class NodeType:
    name: str
    cls: type
    label: str
    description: str
    config_schema: dict
    default_queue: str = "default"
    inline: bool = False  # runs in the transaction that made it ready (engine.core.inline)
    outputs: dict = field(default_factory=dict)
    tokens_per_call: bool = False  # takes a rate limit's token per request it sends, not per start (limits)


@dataclass
class TaskFn:
    name: str
    fn: Callable[..., Any]
    safe_to_repeat: bool
    description: str


_NODE_TYPES: dict[str, NodeType] = {}
_TASKS: dict[str, TaskFn] = {}


def node_type(name: str, *, label: str | None = None, default_queue: str = "default", inline: bool = False,
              tokens_per_call: bool = False):
    """Class decorator: register a node type. The class defines ``config_schema`` and ``run(ctx, inputs)``.
    ``tokens_per_call``: its requests go through ``engine.core.limits.limits_before_call``."""

    def register(cls: type) -> type:
        if name in _NODE_TYPES and _NODE_TYPES[name].cls is not cls:
            raise ValueError(f"node type {name!r} is already registered by {_NODE_TYPES[name].cls.__qualname__}")
        _NODE_TYPES[name] = NodeType(
            name=name,
            cls=cls,
            label=label or name.replace("_", " ").title(),
            description=inspect.cleandoc(cls.__doc__ or ""),
            config_schema=getattr(cls, "config_schema", {"type": "object"}),
            default_queue=default_queue,
            inline=inline,
            outputs=getattr(cls, "outputs", {}),
            tokens_per_call=tokens_per_call,
        )
        return cls

    return register


def get_node_type(name: str) -> NodeType:
    try:
        return _NODE_TYPES[name]
    except KeyError:
        raise NodeTypeNotFound(f"unknown node type {name!r}; known: {sorted(_NODE_TYPES)}") from None


def node_types() -> dict[str, NodeType]:
    return dict(_NODE_TYPES)


def task(fn: Callable | None = None, *, name: str | None = None, safe_to_repeat: bool = True):
    """Register a function that ``python`` nodes may call by name. Only code can register one."""

    def register(f: Callable) -> Callable:
        key = name or f"{f.__module__}.{f.__qualname__}"
        if key in _TASKS and _TASKS[key].fn is not f:
            raise ValueError(f"task {key!r} is already registered")
        _TASKS[key] = TaskFn(key, f, safe_to_repeat, inspect.cleandoc(f.__doc__ or ""))
        return f

    return register(fn) if fn is not None else register


def get_task(name: str) -> TaskFn:
    try:
        return _TASKS[name]
    except KeyError:
        raise TaskNotFound(f"no task registered as {name!r}") from None


def tasks() -> dict[str, TaskFn]:
    return dict(_TASKS)


BUILTIN_MODULES = (
    "engine.nodes.builtin",  # python, noop
    "engine.nodes.http",
    "engine.nodes.llm",
    "engine.nodes.agent",
    "engine.nodes.control",  # branch, transform
    "engine.nodes.waits",  # sleep, approval, subworkflow
    "engine.nodes.tools",  # weft.web_fetch, weft.take_note, weft.list_notes
)


def load_builtin_and_configured() -> None:
    """Import the built-in node types and every module named in WEFT_TASK_MODULES."""
    from django.conf import settings

    for module in BUILTIN_MODULES:
        importlib.import_module(module)
    for module in getattr(settings, "WEFT_TASK_MODULES", []):
        importlib.import_module(module)
