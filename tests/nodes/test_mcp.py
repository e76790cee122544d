"""MCP tool servers (real ones, built with the SDK) called by the agent node, executed in-process by the real
executor: streamable HTTP on loopback and stdio; the journaled tool list; bad input."""

from __future__ import annotations

import json
import sys

import pytest

from engine.core.journal import idempotency_key
from engine.models import JournalEntry, StepRun
from engine.services.scheduler import run_start
from engine.services.workflows import workflow_save
from tests.conftest import definition
from tests.fakes.mcp_servers import HttpMcpServer, free_port
from tests.fakes.servers import ChatServer

pytestmark = pytest.mark.django_db

FAST_RETRY = {"max_attempts": 2, "backoff_s": 0, "jitter": 0}


@pytest.fixture
def state(tmp_path):
    return tmp_path / "effects.jsonl"


@pytest.fixture
def http_mcp(state):
    server = HttpMcpServer(state).start()
    yield server
    server.stop()


@pytest.fixture
def stdio_command(settings, state):
    settings.WEFT_MCP_COMMANDS = {"test-effects": [sys.executable, "-m", "tests.fakes.mcp_servers", "--stdio",
                                                   str(state)]}
    return "test-effects"


def effects(state) -> list[dict]:
    return [json.loads(line) for line in state.read_text().splitlines()] if state.exists() else []


def start(chat, server: dict, slug="mcp-agent"):
    node = {"id": "agent", "type": "agent", "retry": FAST_RETRY,
            "config": {"base_url": chat.url + "/v1", "model": "gpt-4o-mini", "prompt": "Do the work",
                       "mcp_servers": [server]}}
    wf = workflow_save(definition=definition(slug, [node], []))[0]
    return run_start(workflow=wf)[0]


@pytest.mark.parametrize("transport", ["streamable_http", pytest.param("stdio", marks=pytest.mark.slow)])  # stdio:
# a server process of its own per attempt, seconds
def test_the_agent_calls_mcp_tools_with_the_idempotency_key_in_meta(
        transport, allow_loopback, state, http_mcp, stdio_command, drain):
    chat = ChatServer(tool_calls_total=3, tool_name="shop__effect").start()
    server = ({"name": "shop", "transport": "streamable_http", "url": http_mcp.url} if transport == "streamable_http"
              else {"name": "shop", "transport": "stdio", "command": stdio_command})
    try:
        run = start(chat, {**server, "allowed_tools": ["effect", "lookup"]})
        drain()
        offered = [t["function"]["name"] for t in chat.completions()[0]["body"]["tools"]]
        tool_messages = [m for m in chat.completions()[-1]["body"]["messages"] if m["role"] == "tool"]
    finally:
        chat.stop()
    step = StepRun.objects.get(run=run)
    assert step.status == "succeeded", step.error
    assert offered == ["shop__effect", "shop__lookup"]  # slow_effect is not allowed
    expected = [idempotency_key(run_id=run.pk, node_id="agent", generation=0, key=f"tool-{n}-shop__effect")
                for n in (1, 2, 3)]
    assert [(e["i"], e["key"]) for e in effects(state)] == list(zip([0, 1, 2], expected, strict=True))
    result = json.loads(tool_messages[0]["content"])
    assert result["isError"] is False and json.loads(result["content"][0]["text"]) == {"applied": 0}
    keys = list(JournalEntry.objects.filter(step=step).values_list("key", flat=True))
    assert keys[:2] == ["mcp-tools-shop", "turn-1"]


def test_a_resumed_step_offers_the_journaled_tool_list_even_if_the_server_changed(
        allow_loopback, state, drain):
    growing = HttpMcpServer(state, grow=True).start()  # lists late_tool too once effect was called
    chat = ChatServer(tool_calls_total=2, tool_name="shop__effect").start()
    chat.fail_requests = {2}  # the model call after the first tool call fails: attempt 2 resumes the step
    try:
        run = start(chat, {"name": "shop", "transport": "streamable_http", "url": growing.url})
        drain()
        offered = [tuple(t["function"]["name"] for t in c["body"]["tools"]) for c in chat.completions()]
    finally:
        chat.stop()
        growing.stop()
    step = StepRun.objects.get(run=run)
    assert step.status == "succeeded", step.error
    assert step.attempts.count() == 2
    assert set(offered) == {("shop__effect", "shop__slow_effect", "shop__lookup")}  # never late_tool
    assert [e["i"] for e in effects(state)] == [0, 1]  # the first call was not made again


def test_an_unknown_mcp_command_is_refused_when_saving(settings):
    from engine.exceptions import GraphInvalid

    settings.WEFT_MCP_COMMANDS = {"listed": ["true"]}
    node = {"id": "agent", "type": "agent", "config": {
        "prompt": "x", "mcp_servers": [{"name": "s", "transport": "stdio", "command": "rm -rf /"}]}}
    with pytest.raises(GraphInvalid) as caught:
        workflow_save(definition=definition("unknown-command", [node], []))
    assert "MCP command 'rm -rf /' is not in WEFT_MCP_COMMANDS (listed: listed)" in str(caught.value.details)


def test_an_unreachable_mcp_server_fails_the_attempt_retryably_with_a_clear_error(allow_loopback, drain):
    chat = ChatServer(tool_calls_total=1).start()
    url = f"http://127.0.0.1:{free_port()}/mcp"  # nothing listens there
    try:
        run = start(chat, {"name": "shop", "transport": "streamable_http", "url": url})
        drain()
    finally:
        chat.stop()
    step = StepRun.objects.get(run=run)
    assert step.status == "failed"
    assert step.attempts.count() == 2  # retried
    assert step.error.startswith(f"McpUnavailable: cannot reach MCP server 'shop' ({url})"), step.error
    assert not chat.completions()  # the model was never asked without its tools


def test_a_malformed_tool_list_is_a_clear_error_and_is_not_journaled(allow_loopback, state, drain):
    bad = HttpMcpServer(state, bad_tool=True).start()
    chat = ChatServer(tool_calls_total=1).start()
    try:
        run = start(chat, {"name": "shop", "transport": "streamable_http", "url": bad.url})
        drain()
    finally:
        chat.stop()
        bad.stop()
    step = StepRun.objects.get(run=run)
    assert step.status == "failed"
    assert "McpBadToolList: MCP server 'shop': tool 3 has no usable name ('bad tool!'" in step.error
    assert not JournalEntry.objects.filter(step=step, key="mcp-tools-shop", status="succeeded").exists()


def test_an_mcp_server_outside_the_ssrf_guard_is_refused(allow_loopback, state, http_mcp, drain):
    chat = ChatServer(tool_calls_total=1).start()
    try:
        run = start(chat, {"name": "shop", "transport": "streamable_http", "url": http_mcp.url})
        allow_loopback.WEFT_HTTP_ALLOWED_HOSTS = ["*"]  # loopback refused from now on: the guard stops the call
        drain()
    finally:
        chat.stop()
    step = StepRun.objects.get(run=run)
    assert step.status == "failed" and step.attempts.count() == 1
    assert step.error.startswith("HostNotAllowed:"), step.error
    assert not effects(state)
