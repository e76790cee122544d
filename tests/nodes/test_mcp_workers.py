"""MCP tools and tool approvals on real worker processes: an agent SIGKILLed during an MCP tool call, and a
worker restart while a tool call waits for approval."""

from __future__ import annotations

import json
import os
import signal

import pytest

from engine.core.journal import idempotency_key
from engine.models import Attempt, Event, StepRun
from engine.services.scheduler import run_start
from engine.services.tool_approvals import tool_call_decide
from engine.services.workflows import workflow_save
from tests.conftest import definition, finished, wait_for
from tests.fakes.mcp_servers import HttpMcpServer
from tests.fakes.servers import ChatServer

pytestmark = [pytest.mark.workers, pytest.mark.chaos, pytest.mark.django_db(transaction=True)]


def lines(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def agent(chat, server: dict) -> dict:
    return {"id": "agent", "type": "agent", "retry": {"max_attempts": 3, "backoff_s": 0, "jitter": 0},
            "config": {"base_url": chat.url + "/v1", "model": "gpt-4o-mini", "prompt": "apply 3 effects",
                       "mcp_servers": [server]}}


def test_an_agent_killed_during_an_mcp_tool_call_resumes_without_repeating_a_finished_call(
        allow_loopback, workers, tmp_path):
    state = tmp_path / "effects.jsonl"
    state.with_suffix(".hold").write_text("1")  # the second call (i = 1) is held until the kill
    mcp = HttpMcpServer(state).start()
    chat = ChatServer(tool_calls_total=3, tool_name="shop__slow_effect").start()
    try:
        wf = workflow_save(definition=definition("mcp-crash", [agent(chat, {
            "name": "shop", "transport": "streamable_http", "url": mcp.url, "safe_to_repeat": True})], []))[0]
        workers.start()
        run, _ = run_start(workflow=wf)
        wait_for(lambda: any(e["i"] == 1 for e in lines(state)), timeout=90, message="the held MCP call")
        victim = StepRun.objects.get(run=run).worker
        os.kill(int(victim.rsplit(":", 1)[1]), signal.SIGKILL)
        state.with_suffix(".hold").unlink()
        run = wait_for(finished(run.pk), timeout=120, message="agent run after the kill")
        asks = chat.asks_per_key()
    finally:
        chat.stop()
        mcp.stop()
    step = StepRun.objects.get(run=run)
    assert run.status == "succeeded", step.error
    outcomes = list(Attempt.objects.filter(step=step).order_by("number").values_list("outcome", flat=True))
    assert outcomes == ["lost", "succeeded"]
    keys = [idempotency_key(run_id=run.pk, node_id="agent", generation=0, key=f"tool-{n}-shop__slow_effect")
            for n in (1, 2, 3)]
    assert [(e["i"], e["key"]) for e in lines(state)] == list(zip([0, 1, 2], keys, strict=True))  # once each
    calls = [e["key"] for e in lines(state.with_suffix(".calls"))]
    assert calls == [keys[0], keys[1], keys[1], keys[2]]  # only the call cut off was sent again, same key
    assert set(asks.values()) == {1}  # no model turn was asked twice


def test_a_worker_restart_while_a_tool_call_waits_for_approval_does_not_ask_twice(
        allow_loopback, workers, tmp_path):
    state = tmp_path / "effects.jsonl"
    mcp = HttpMcpServer(state).start()
    chat = ChatServer(tool_calls_total=2, tool_name="shop__effect").start()
    try:
        wf = workflow_save(definition=definition("mcp-approval", [agent(chat, {
            "name": "shop", "transport": "streamable_http", "url": mcp.url, "requires_approval": True})], []))[0]
        workers.start()
        run, _ = run_start(workflow=wf)

        def waiting_on(call_id):
            return lambda: StepRun.objects.filter(run=run, status="waiting", waiting_reason="tool_approval",
                                                  waiting_detail__tool_call__id=call_id).exists()

        wait_for(waiting_on("call_0"), timeout=90, message="the first call to wait for approval")
        workers.stop()
        tool_call_decide(run_id=run.pk, node_id="agent", tool_call="call_0", approve=True, actor="alice")
        workers.start()
        wait_for(waiting_on("call_1"), timeout=90, message="the second call to wait for approval")
        workers.kill_all()  # gone while waiting: nothing is lost, nothing asked again
        workers.start()
        tool_call_decide(run_id=run.pk, node_id="agent", tool_call="call_1", approve=False, actor="bob",
                         comment="not this one")
        run = wait_for(finished(run.pk), timeout=120, message="the run after both decisions")
    finally:
        chat.stop()
        mcp.stop()
    step = StepRun.objects.get(run=run)
    assert run.status == "succeeded", step.error
    waits = Event.objects.filter(run=run, type="step.waiting").count()
    assert waits == 2  # once per call
    assert [e["i"] for e in lines(state)] == [0]  # the rejected call was never made
    decisions = list(Event.objects.filter(run=run, type="step.tool_decision").order_by("seq")
                     .values_list("payload__decision", "payload__by"))
    assert decisions == [("approved", "alice"), ("rejected", "bob")]
