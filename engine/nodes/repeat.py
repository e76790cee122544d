"""Which of a node's calls are not safe to repeat, read from its definition before it runs.

A node type may define ``repeat_risks(config) -> list[str]``: a short description of each call it
makes that a retry or rerun could send twice (an HTTP POST without an Idempotency-Key, an agent tool
declared unsafe, a function registered with ``safe_to_repeat=False``). The journal decides at run
time; this is what the operator is warned about before asking for a repeat.
"""

from __future__ import annotations

from engine.core.registry import node_types


def node_repeat_risks(node: dict, *, types: dict | None = None) -> list[str]:
    registered = (node_types() if types is None else types).get(node.get("type"))
    risks = getattr(registered.cls, "repeat_risks", None) if registered else None
    config = node.get("config") or {}
    return list(risks(config)) if risks and isinstance(config, dict) else []


def definition_repeat_risks(definition: dict) -> dict[str, list[str]]:
    """node id -> its calls that are not safe to repeat, for the nodes that have any."""
    out = {}
    types = node_types()
    for node in definition.get("nodes", []):
        risks = node_repeat_risks(node, types=types)
        if risks:
            out[node["id"]] = risks
    return out
