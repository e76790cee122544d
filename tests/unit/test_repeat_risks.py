"""What a node's definition says about repeating it: the calls a retry or rerun could send twice."""

from __future__ import annotations

from engine.core.registry import load_builtin_and_configured
from engine.nodes.repeat import definition_repeat_risks, node_repeat_risks

load_builtin_and_configured()


def http(method, **extra):
    return {"id": "h", "type": "http", "config": {"method": method, "url": "https://pay.example/x", **extra}}


def test_http_without_key_is_unsafe_only_for_non_idempotent_methods():
    assert node_repeat_risks(http("POST", send_idempotency_key=False)) == [
        "POST https://pay.example/x without an Idempotency-Key"]
    assert node_repeat_risks(http("PATCH", send_idempotency_key=False))
    assert node_repeat_risks(http("POST")) == []  # the key lets the server deduplicate
    assert node_repeat_risks(http("PUT", send_idempotency_key=False)) == []
    assert node_repeat_risks(http("GET", send_idempotency_key=False)) == []


def test_agent_names_the_tools_declared_unsafe():
    tools = [{"name": "refund", "type": "http", "url": "https://pay.example/r", "safe_to_repeat": False},
             {"name": "raw", "type": "http", "url": "https://pay.example/r", "send_idempotency_key": False},
             {"name": "keyed", "type": "http", "url": "https://pay.example/r"},
             {"name": "notes", "type": "task", "function": "weft.list_notes"},
             {"name": "ghost", "type": "task", "function": "no.such.task"}]
    agent = {"id": "a", "type": "agent", "config": {"prompt": "p", "tools": tools}}
    assert node_repeat_risks(agent) == ["tool refund", "tool raw"]


def test_definition_lists_only_nodes_with_risks():
    d = {"nodes": [http("POST", send_idempotency_key=False), {"id": "n", "type": "noop"},
                   {"id": "odd", "type": "no-such-type", "config": {}}]}
    assert definition_repeat_risks(d) == {"h": ["POST https://pay.example/x without an Idempotency-Key"]}
