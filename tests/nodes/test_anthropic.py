"""The anthropic provider (the Messages API through the official SDK) against a real loopback Messages server."""

from __future__ import annotations

import logging

import pytest

from engine.core.journal import idempotency_key
from engine.integrations import netguard
from engine.integrations.llm_anthropic import from_content, to_messages
from engine.integrations.llm_providers import Endpoint, LLMBadResponse, LLMRequestRejected, chat
from engine.models import Attempt, JournalEntry, StepRun
from tests.nodes.conftest import LLM_KEY
from tests.nodes.test_agent import effect_tool, start
from tests.nodes.test_llm import run_nodes

pytestmark = [pytest.mark.django_db, pytest.mark.slow]  # slow: the anthropic SDK takes seconds to import

MODEL = "claude-sonnet-4-5-20250929"


def claude_node(server, id="ask", **config) -> dict:
    return {"id": id, "type": "llm", "retry": {"max_attempts": 1},
            "config": {"provider": "anthropic", "base_url": server.url, "model": MODEL, "credential": "llm-key",
                       **config}}


def test_llm_node_maps_the_system_prompt_and_counts_usage_and_cost(allow_loopback, llm_key, messages_server, drain):
    messages_server.usage = lambda body: {"input_tokens": 100, "cache_creation_input_tokens": 20,
                                          "cache_read_input_tokens": 50, "output_tokens": 30}
    node = claude_node(messages_server, system="You are terse.", prompt="Hello {{ inputs.name }}", temperature=0.1)
    run = run_nodes([node], drain, inputs={"name": "Ada"})
    step = StepRun.objects.get(run=run)
    assert run.status == "succeeded", step.error
    assert step.output == {"text": "echo: Hello Ada", "model": MODEL, "finish_reason": "stop", "simulated": False,
                           "usage": {"prompt_tokens": 170, "completion_tokens": 30, "total_tokens": 200}}
    request = messages_server.messages()[0]
    assert request["body"]["system"] == "You are terse."
    assert request["body"]["messages"] == [{"role": "user", "content": [{"type": "text", "text": "Hello Ada"}]}]
    assert request["body"]["max_tokens"] == 4096 and request["body"]["temperature"] == 0.1
    headers = request["headers"]
    assert headers["authorization"] == f"Bearer {LLM_KEY}" and "x-api-key" not in headers
    assert headers["anthropic-version"] and headers["user-agent"].startswith("Anthropic/Python")
    assert headers["idempotency-key"] == idempotency_key(run_id=run.pk, node_id="ask", generation=0, key="completion")
    metrics = Attempt.objects.get(step=step).metrics
    assert metrics["prompt_tokens"] == 170 and metrics["completion_tokens"] == 30 and metrics["llm_calls"] == 1
    assert metrics["cost_usd"] == pytest.approx((170 * 3.00 + 30 * 15.00) / 1e6)  # claude-sonnet-4-5 list price


def test_structured_output_uses_the_native_json_schema_format(allow_loopback, llm_key, messages_server, drain):
    messages_server.json_reply = {"category": "billing"}
    schema = {"type": "object", "required": ["category"], "properties": {"category": {"enum": ["billing"]}}}
    run = run_nodes([claude_node(messages_server, prompt="classify", response_schema=schema)], drain)
    assert StepRun.objects.get(run=run).output["json"] == {"category": "billing"}
    assert messages_server.messages()[0]["body"]["output_config"] == {"format": {"type": "json_schema",
                                                                                 "schema": schema}}


def test_agent_calls_a_tool_through_tool_use_then_answers(allow_loopback, llm_key, messages_server, tool_server,
                                                          drain):
    node = {"id": "agent", "type": "agent", "retry": {"max_attempts": 1},
            "config": {"provider": "anthropic", "base_url": messages_server.url, "model": MODEL,
                       "credential": "llm-key", "system": "Be careful.", "prompt": "Do the work",
                       "tools": [effect_tool(tool_server)]}}
    run = start(node, slug="claude-agent")
    drain()
    step = StepRun.objects.get(run=run)
    assert step.status == "succeeded", step.error
    assert step.output == {"answer": "done after 2 tool calls", "turns": 3, "tool_calls": 2, "stopped": "answered",
                           "model": MODEL, "simulated": False}
    assert [r["body"] for r in tool_server.requests] == [{"i": 0}, {"i": 1}]
    keys = list(JournalEntry.objects.filter(step=step).values_list("key", flat=True))
    assert keys == ["turn-1", "tool-1-effect", "turn-2", "tool-2-effect", "turn-3"]
    turn = JournalEntry.objects.get(step=step, key="turn-1").result["message"]
    assert turn == {"role": "assistant", "content": "Calling effect.", "tool_calls": [
        {"id": "toolu_0", "type": "function", "function": {"name": "effect", "arguments": '{"i": 0}'}}]}
    first, last = messages_server.messages()[0]["body"], messages_server.messages()[-1]["body"]
    assert first["tools"] == [{"name": "effect", "description": "apply one effect", "input_schema": {
        "type": "object", "properties": {"i": {"type": "integer"}}}}]
    assert first["system"] == "Be careful."
    assert [m["role"] for m in last["messages"]] == ["user", "assistant", "user", "assistant", "user"]
    result = last["messages"][4]["content"][0]
    assert result["type"] == "tool_result" and result["tool_use_id"] == "toolu_1"
    assert '"effect": 2' in result["content"]
    assert Attempt.objects.get(step=step).metrics["llm_calls"] == 3


def test_a_journaled_conversation_maps_to_the_messages_api_and_back():
    content = [{"type": "text", "text": "Looking."},
               {"type": "tool_use", "id": "toolu_1", "name": "lookup", "input": {"q": "x"}},
               {"type": "tool_use", "id": "toolu_2", "name": "lookup", "input": {"q": "y"}}]
    assistant = from_content(content)  # what the agent journals
    conversation = [{"role": "system", "content": "S"}, {"role": "user", "content": "U"}, assistant,
                    {"role": "tool", "tool_call_id": "toolu_1", "content": "1"},
                    {"role": "tool", "tool_call_id": "toolu_2", "content": "2"}]
    system, turns = to_messages(conversation)
    assert system == "S"
    assert turns == [{"role": "user", "content": [{"type": "text", "text": "U"}]},
                     {"role": "assistant", "content": content},
                     {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "1"},
                                                  {"type": "tool_result", "tool_use_id": "toolu_2", "content": "2"}]}]


def test_errors_map_to_weft_errors_without_client_side_retries(allow_loopback, llm_key, messages_server, drain):
    messages_server.fail_next = [(429, {"Retry-After": "0"})]
    run = run_nodes([claude_node(messages_server, prompt="hi")], drain, slug="c-429")
    assert run.status == "succeeded" and len(messages_server.messages()) == 2  # Retry-After waited out
    messages_server.fail_next = [(529, {})]
    run = run_nodes([claude_node(messages_server, prompt="hi")], drain, slug="c-529")
    step = StepRun.objects.get(run=run)
    assert step.error.startswith("LLMUnavailable: model endpoint answered 529") and "simulated 529" in step.error
    assert len(messages_server.messages()) == 3  # one request: the SDK does not retry
    endpoint = Endpoint("anthropic", MODEL, base_url=messages_server.url)
    with pytest.raises(LLMRequestRejected, match=r"refused the request \(400\): .*roles must alternate"):
        chat(endpoint, messages=[{"role": "assistant", "content": "first"}])
    messages_server.reply_override = b'{"type": "message", "role": "assistant"}'
    with pytest.raises(LLMBadResponse, match="without a message"):
        chat(endpoint, messages=[{"role": "user", "content": "hi"}])


def test_auto_uses_the_configured_anthropic_endpoint_and_its_key(settings, messages_server, drain):
    settings.OPENAI_API_KEY, settings.WEFT_LLM_BASE_URL = "", ""
    settings.ANTHROPIC_API_KEY, settings.WEFT_ANTHROPIC_BASE_URL = "sk-ant-env", messages_server.url
    run = run_nodes([{"id": "ask", "type": "llm", "config": {"provider": "auto", "prompt": "hi"}}], drain)
    step = StepRun.objects.get(run=run)
    assert step.output["text"] == "echo: hi", step.error
    request = messages_server.messages()[0]
    assert request["headers"]["authorization"] == "Bearer sk-ant-env"
    assert request["body"]["model"] == settings.WEFT_ANTHROPIC_MODEL


def test_anthropic_without_a_key_fails_with_a_clear_error(settings, drain):
    settings.ANTHROPIC_API_KEY, settings.WEFT_ANTHROPIC_BASE_URL = "", ""
    node = {"id": "ask", "type": "llm", "retry": {"max_attempts": 1},
            "config": {"provider": "anthropic", "prompt": "hi"}}
    step = StepRun.objects.get(run=run_nodes([node], drain))
    assert step.status == "failed" and "ANTHROPIC_API_KEY" in step.error


def test_the_guard_refuses_a_loopback_host_before_any_connection(settings, messages_server, caplog):
    settings.WEFT_HTTP_ALLOWED_HOSTS = ["*"]
    secret = netguard.CredentialHeaders(name="k", headers={"Authorization": "Bearer sk-ant-secret"},
                                        secret="sk-ant-secret", allowed_hosts=("127.0.0.1",))
    caplog.set_level(logging.DEBUG)
    with pytest.raises(netguard.HostNotAllowed, match="loopback"):  # not wrapped as a connection error
        chat(Endpoint("anthropic", MODEL, base_url=messages_server.url, credential=secret),
             messages=[{"role": "user", "content": "hi"}])
    assert messages_server.requests == []
    assert not [r for r in caplog.records if "sk-ant-secret" in r.getMessage()]


def test_a_key_echoed_back_is_in_no_log_line_and_no_error(allow_loopback, llm_key, messages_server, drain, caplog):
    caplog.set_level(logging.DEBUG)
    messages_server.echo_auth = True
    step = StepRun.objects.get(run=run_nodes([claude_node(messages_server, prompt="hi")], drain))
    assert step.error.startswith("LLMRequestRejected: model endpoint refused the request (401)")
    assert "bad key Bearer ***" in step.error and LLM_KEY not in step.error
    assert messages_server.messages()[0]["headers"]["authorization"] == f"Bearer {LLM_KEY}"
    assert any(r.name.startswith("anthropic") for r in caplog.records)  # the SDK's debug log was on
    assert not [r for r in caplog.records if LLM_KEY in r.getMessage()]
