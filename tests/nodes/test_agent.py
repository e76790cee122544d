"""The agent node against real loopback model and tool servers, executed in-process by the real executor."""

from __future__ import annotations

import pytest
from django.db.models.functions import Now

from engine.core.journal import idempotency_key
from engine.models import Attempt, JournalEntry, StepRun
from engine.services.scheduler import run_start
from engine.services.workflows import workflow_save
from engine.worker.recovery import recover_once
from tests.conftest import definition
from tests.fakes.servers import ChatServer
from tests.nodes.tasks import SimulatedCrash

pytestmark = pytest.mark.django_db

FAST_RETRY = {"max_attempts": 3, "backoff_s": 0, "jitter": 0}


def agent_node(chat, tools, **config) -> dict:
    return {"id": "agent", "type": "agent", "retry": FAST_RETRY,
            "config": {"base_url": chat.url + "/v1", "model": "gpt-4o-mini", "prompt": "Do the work",
                       "tools": tools, **config}}


def effect_tool(tool_server, **extra) -> dict:
    return {"name": "effect", "type": "http", "url": tool_server.url + "/effect", "description": "apply one effect",
            "parameters": {"type": "object", "properties": {"i": {"type": "integer"}}}, **extra}


def start(node, slug="agent1"):
    wf = workflow_save(definition=definition(slug, [node], []))[0]
    run, _ = run_start(workflow=wf)
    return run


def test_agent_loops_through_http_tool_calls_until_it_answers(allow_loopback, tool_server, drain):
    chat = ChatServer(tool_calls_total=5, calls_per_turn=2).start()
    try:
        run = start(agent_node(chat, [effect_tool(tool_server)], system="Be careful."))
        drain()
    finally:
        chat.stop()
    step = StepRun.objects.get(run=run)
    assert step.status == "succeeded", step.error
    assert step.output == {"answer": "done after 5 tool calls", "turns": 4, "tool_calls": 5, "stopped": "answered",
                           "model": "gpt-4o-mini", "simulated": False}
    keys = list(JournalEntry.objects.filter(step=step).values_list("key", flat=True))
    assert keys == ["turn-1", "tool-1-effect", "tool-2-effect", "turn-2", "tool-3-effect", "tool-4-effect", "turn-3",
                    "tool-5-effect", "turn-4"]
    expected = [idempotency_key(run_id=run.pk, node_id="agent", generation=0, key=f"tool-{n}-effect")
                for n in range(1, 6)]
    assert [r["headers"]["idempotency-key"] for r in tool_server.requests] == expected
    assert [r["body"] for r in tool_server.requests] == [{"i": n} for n in range(5)]
    sent = chat.completions()[0]["body"]
    assert sent["tools"][0]["function"]["name"] == "effect" and sent["messages"][0]["role"] == "system"
    last = chat.completions()[-1]["body"]["messages"]
    assert [m["role"] for m in last].count("tool") == 5
    metrics = Attempt.objects.get(step=step).metrics
    assert metrics["llm_calls"] == 4 and metrics["tool_calls_executed"] == 5


def test_task_tools_get_arguments_checked_against_the_signature(allow_loopback, drain):
    chat = ChatServer(tool_calls_total=2, tool_name="weather",
                      tool_args=lambda n: {"city": "Oslo"} if n == 0 else {"town": "Bergen"}).start()
    try:
        run = start(agent_node(chat, [{"name": "weather", "type": "task", "function": "nodes_tests.weather"}]))
        drain()
        tool_messages = [m for m in chat.completions()[-1]["body"]["messages"] if m["role"] == "tool"]
        definition_sent = chat.completions()[0]["body"]["tools"][0]["function"]
    finally:
        chat.stop()
    step = StepRun.objects.get(run=run)
    assert step.status == "succeeded"
    assert tool_messages[0]["content"] == '{"city": "Oslo", "celsius": 14}'
    assert "unexpected argument(s) 'town'" in tool_messages[1]["content"]
    assert definition_sent["description"] == "Current temperature in a city."
    assert definition_sent["parameters"] == {"type": "object", "properties": {"city": {"type": "string"}},
                                             "required": ["city"]}


def test_retry_replays_journaled_turns_and_resends_the_failed_tool_call_with_its_key(allow_loopback, tool_server,
                                                                                       drain):
    tool_server.fail_effect_requests = {3}  # the third tool call fails once with 500
    chat = ChatServer(tool_calls_total=5).start()
    try:
        run = start(agent_node(chat, [effect_tool(tool_server)]))
        drain()
        asks = chat.asks_per_key()
    finally:
        chat.stop()
    step = StepRun.objects.get(run=run)
    assert step.status == "succeeded" and step.output["tool_calls"] == 5
    assert list(Attempt.objects.filter(step=step).values_list("outcome", flat=True)) == ["failed", "succeeded"]
    assert len(asks) == 6 and set(asks.values()) == {1}  # no turn was asked twice
    keys = [r["headers"]["idempotency-key"] for r in tool_server.requests]
    assert len(keys) == 6 and keys[2] == keys[3]  # call 3 was sent again with the same key
    assert set(tool_server.effects.values()) == {1} and len(tool_server.effects) == 5
    second = Attempt.objects.get(step=step, number=2).metrics
    assert second["tool_calls_replayed"] == 2 and second["tool_calls_executed"] == 3
    assert second["llm_calls"] == 3  # turns 1-3 replayed from the journal, 4-6 asked


def test_an_unsafe_tool_cut_off_mid_call_leaves_the_step_in_doubt(allow_loopback, tmp_path, drain):
    log, flag = tmp_path / "charges", tmp_path / "crashed"
    chat = ChatServer(tool_calls_total=2, tool_name="charge",
                      tool_args=lambda n: {"i": n, "flag": str(flag), "log": str(log)}).start()
    try:
        run = start(agent_node(chat, [{"name": "charge", "type": "task", "function": "nodes_tests.charge_once"}]))
        with pytest.raises(SimulatedCrash):
            drain()
        StepRun.objects.filter(run=run).update(lease_expires_at=Now())  # the dead worker's lease runs out
        recover_once()
        drain()
    finally:
        chat.stop()
    step = StepRun.objects.get(run=run)
    assert step.status == "waiting" and step.waiting_reason == "in_doubt"
    assert step.waiting_detail["key"] == "tool-1-charge"
    assert log.read_text().split() == ["0"]  # never charged twice
    assert JournalEntry.objects.get(step=step, key="tool-1-charge").status == "started"


def test_max_turns_fails_or_returns_as_configured(allow_loopback, tool_server, drain):
    chat = ChatServer(tool_calls_total=50).start()
    try:
        failing = start(agent_node(chat, [effect_tool(tool_server)], max_turns=3, on_max_turns="fail") |
                        {"retry": {"max_attempts": 1}}, slug="agent-fail")
        drain()
        returning = start(agent_node(chat, [effect_tool(tool_server)], max_turns=2, on_max_turns="return"),
                          slug="agent-return")
        drain()
    finally:
        chat.stop()
    failed = StepRun.objects.get(run=failing)
    assert failed.status == "failed" and "AgentStopped" in failed.error and "max_turns" in failed.error
    returned = StepRun.objects.get(run=returning)
    assert returned.status == "succeeded"
    assert returned.output["stopped"] == "max_turns" and returned.output["turns"] == 2
    assert returned.output["tool_calls"] == 2


def test_unknown_tool_names_are_reported_back_to_the_model(allow_loopback, drain):
    chat = ChatServer(tool_calls_total=1, tool_name="nope").start()
    try:
        run = start(agent_node(chat, [{"name": "weather", "type": "task", "function": "nodes_tests.weather"}]))
        drain()
        tool_message = [m for m in chat.completions()[-1]["body"]["messages"] if m["role"] == "tool"][0]
    finally:
        chat.stop()
    assert StepRun.objects.get(run=run).status == "succeeded"
    assert "no tool named 'nope'" in tool_message["content"]


def test_web_fetch_tool_reports_refused_hosts_to_the_model_and_serves_the_offline_site(allow_loopback, drain):
    chat = ChatServer(tool_calls_total=2, tool_name="web_fetch",
                      tool_args=lambda n: {"url": ["http://169.254.169.254/latest/meta-data",
                                                   "https://research.weft-demo.example/articles/leases"][n]}).start()
    try:
        run = start(agent_node(chat, [{"name": "web_fetch", "type": "task", "function": "weft.web_fetch"}]))
        drain()
        results = [m["content"] for m in chat.completions()[-1]["body"]["messages"] if m["role"] == "tool"]
    finally:
        chat.stop()
    assert StepRun.objects.get(run=run).status == "succeeded"
    assert "HostNotAllowed" in results[0] and "link-local" in results[0]
    assert '"title": "Leases and heartbeats"' in results[1]
