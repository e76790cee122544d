"""A definition using every node type round-trips through export -> import unchanged, and holds no secret."""

from __future__ import annotations

import copy
import json

import pytest

from engine.core.registry import node_types
from engine.integrations.credentials import credential_create
from engine.services.workflows import workflow_export, workflow_save
from tests.conftest import definition, node

pytestmark = pytest.mark.django_db

SECRET = "sk-roundtrip-0a9b8c7d6e"
BUILTIN_TYPES = {"python", "noop", "http", "llm", "agent", "branch", "transform", "sleep", "approval", "subworkflow"}


def every_node_type() -> dict:
    nodes = [
        node("py", "tests.add", kwargs={"a": "{{ inputs.a }}", "b": 2}, retry={"max_attempts": 2, "backoff_s": 0.5}),
        {"id": "nop", "type": "noop", "name": "Nothing", "position": {"x": 10.5, "y": -3}},
        {"id": "fetch", "type": "http", "timeout_s": 30,
         "config": {"method": "POST", "url": "https://api.example.org/v1/items", "headers": {"X-Trace": "1"},
                    "json": {"n": "{{ nodes.py.output.sum }}", "tags": ["a", None, 1.5, True]},
                    "credential": "svc", "send_idempotency_key": True}},
        {"id": "ask", "type": "llm", "queue": "slow",
         "config": {"provider": "openai", "model": "gpt-4o-mini", "credential": "svc", "temperature": 0.2,
                    "system": "Be brief.", "prompt": "Summarise {{ nodes.fetch.output.body }}",
                    "response_schema": {"type": "object", "properties": {"s": {"type": "string"}}}}},
        {"id": "agent", "type": "agent",
         "config": {"prompt": "Use tools on {{ nodes.ask.output.json.s }}", "max_turns": 7,
                    "tools": [{"name": "weather", "type": "task", "function": "nodes_tests.weather"},
                              {"name": "ticket", "type": "http", "url": "https://api.example.org/tickets",
                               "safe_to_repeat": False, "credential": "svc"}]}},
        {"id": "route", "type": "branch",
         "config": {"cases": [{"branch": "yes", "when": "{{ nodes.agent.output.turns > 1 }}"}], "default": "no"}},
        {"id": "shape", "type": "transform", "config": {"template": {"answer": "{{ nodes.agent.output.answer }}"}}},
        {"id": "pick", "type": "transform", "config": {"jmespath": "upstream.shape.answer"}},
        {"id": "nap", "type": "sleep", "config": {"seconds": 1.5}},
        {"id": "ok", "type": "approval", "config": {"message": "Ship it?", "timeout_s": 60, "on_timeout": "approve"}},
        {"id": "child", "type": "subworkflow", "trigger_rule": "all_done",
         "config": {"workflow": "roundtrip-child", "inputs": {"x": "{{ inputs.a }}"}}},
    ]
    edges = [("py", "fetch"), ("nop", "fetch"), ("fetch", "ask"), ("ask", "agent"), ("agent", "route"),
             {"source": "route", "target": "shape", "branch": "yes"},
             {"source": "route", "target": "nap", "branch": "no"},
             ("shape", "pick"), ("pick", "ok"), ("nap", "ok"),
             {"source": "ok", "target": "child", "condition": "output.approved"}]
    return definition("roundtrip", nodes, edges, description="every node type",
                      inputs={"type": "object", "properties": {"a": {"type": "integer"}}})


def test_every_node_type_round_trips_through_export_and_import_unchanged():
    credential_create(name="svc", kind="bearer", secret=SECRET, allowed_hosts=["api.example.org", "*"])
    workflow_save(definition=definition("roundtrip-child", [node("c")], []))
    original = every_node_type()
    assert {n["type"] for n in original["nodes"]} == BUILTIN_TYPES <= set(node_types())
    sent = copy.deepcopy(original)
    workflow, version, created = workflow_save(definition=sent)
    assert created
    exported = workflow_export("roundtrip")
    assert exported == original
    assert SECRET not in json.dumps(exported)
    # Import what was exported: identical, so no new version; and it validates on its own.
    _, again, created_again = workflow_save(definition=json.loads(json.dumps(exported)))
    assert not created_again and again.pk == version.pk
    assert workflow_export("roundtrip") == original
