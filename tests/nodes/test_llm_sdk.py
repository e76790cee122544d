"""The openai provider through the official SDK, over the SSRF-guarded transport, against a real loopback server."""

from __future__ import annotations

import logging
import socket

import pytest

from engine.core.journal import idempotency_key
from engine.core.limits import limits_status
from engine.integrations import llm_sdk, netguard
from engine.integrations.llm_providers import Endpoint, LLMRequestRejected, LLMUnavailable, chat
from engine.models import Attempt, StepRun
from engine.services.limits import limit_create
from tests.nodes.test_llm import KEY, llm_node, run_nodes

pytestmark = pytest.mark.django_db


def endpoint(server, **extra) -> Endpoint:
    return Endpoint("openai", "gpt-4o-mini", base_url=server.url + "/v1", **extra)


def key_credential(*hosts) -> netguard.CredentialHeaders:
    return netguard.CredentialHeaders(name="llm-key", headers={"Authorization": f"Bearer {KEY}"}, secret=KEY,
                                      allowed_hosts=hosts)


def test_a_call_is_one_sdk_request_with_the_journal_key_and_no_client_side_retry(allow_loopback, llm_key,
                                                                                  chat_server, drain):
    chat_server.fail_next = [(500, {}), (500, {})]
    run = run_nodes([llm_node(chat_server, prompt="hi")], drain)
    step = StepRun.objects.get(run=run)
    assert step.status == "failed" and step.error.startswith("LLMUnavailable: model endpoint answered 500")
    assert len(chat_server.completions()) == 1  # max_retries=0: the engine's retry policy decides
    request = chat_server.completions()[0]
    assert request["headers"]["user-agent"].startswith("OpenAI/Python")
    assert request["headers"]["idempotency-key"] == idempotency_key(run_id=run.pk, node_id="ask", generation=0,
                                                                     key="completion")
    assert request["headers"]["authorization"] == f"Bearer {KEY}"


def test_tool_calls_come_back_in_the_journaled_shape(allow_loopback, chat_server):
    chat_server.tool_calls_total, chat_server.calls_per_turn = 2, 2
    tools = [{"type": "function", "function": {"name": "effect", "parameters": {"type": "object"}}}]
    reply = chat(endpoint(chat_server), messages=[{"role": "user", "content": "go"}], tools=tools)
    assert reply["message"] == {"role": "assistant", "content": None, "tool_calls": [
        {"id": "call_0", "type": "function", "function": {"name": "effect", "arguments": '{"i": 0}'}},
        {"id": "call_1", "type": "function", "function": {"name": "effect", "arguments": '{"i": 1}'}}]}
    assert reply["finish_reason"] == "tool_calls" and reply["usage"]["total_tokens"] == 15
    assert chat_server.completions()[0]["body"]["tools"] == tools


def test_a_host_outside_the_guard_is_refused_before_any_connection(settings, llm_key, chat_server, drain):
    settings.WEFT_HTTP_ALLOWED_HOSTS = ["*"]  # loopback is not allowed
    node = llm_node(chat_server, prompt="hi", base_url="{{ inputs.url }}")
    run = run_nodes([node], drain, inputs={"url": chat_server.url + "/v1"})
    step = StepRun.objects.get(run=run)
    assert step.status == "failed" and step.error.startswith("HostNotAllowed:") and "loopback" in step.error
    with pytest.raises(netguard.HostNotAllowed):
        chat(endpoint(chat_server), messages=[{"role": "user", "content": "hi"}])
    assert chat_server.requests == []


def test_a_credential_is_not_sent_to_a_host_off_its_allowed_hosts(allow_loopback, chat_server):
    with pytest.raises(netguard.HostNotAllowed, match="not in the credential's `allowed_hosts`"):
        chat(endpoint(chat_server, credential=key_credential("api.example.com")),
             messages=[{"role": "user", "content": "hi"}])
    assert chat_server.requests == []


def test_the_connection_goes_to_the_address_the_guard_checked(settings, chat_server, monkeypatch):
    settings.WEFT_HTTP_ALLOWED_HOSTS = ["*", "127.0.0.1"]
    real = socket.getaddrinfo
    answers = ["127.0.0.1", "169.254.169.254"]  # a second lookup would get the metadata address

    def rebinding(host, port, *args, **kwargs):
        if host == "model.example":
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (answers.pop(0), port))]
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", rebinding)
    port = chat_server.httpd.server_address[1]
    reply = chat(Endpoint("openai", "gpt-4o-mini", base_url=f"http://model.example:{port}/v1"),
                 messages=[{"role": "user", "content": "hi"}])
    assert reply["message"]["content"] == "echo: hi"
    assert chat_server.completions()[0]["headers"]["host"] == f"model.example:{port}"
    assert answers == ["169.254.169.254"]  # resolved once, by the guard


def test_the_credential_is_in_no_log_line_and_no_error(allow_loopback, llm_key, chat_server, drain, caplog):
    caplog.set_level(logging.DEBUG)
    chat_server.echo_auth = True
    chat_server.fail_next = [(500, {}), (400, {})]
    node = {**llm_node(chat_server, prompt="hi"), "retry": {"max_attempts": 2, "backoff_s": 0, "jitter": 0}}
    run = run_nodes([node], drain)
    step = StepRun.objects.get(run=run)
    errors = list(Attempt.objects.filter(step=step).values_list("error", flat=True))
    assert step.status == "failed" and len(errors) == 2
    assert "LLMUnavailable" in errors[0] and "LLMRequestRejected" in errors[1]
    assert all("(sent Bearer ***)" in e and KEY not in e for e in errors)
    assert [r["headers"]["authorization"] for r in chat_server.completions()] == [f"Bearer {KEY}"] * 2
    assert any(r.name.startswith(("openai", "httpx")) for r in caplog.records)  # the SDK's debug log was on
    assert not [r for r in caplog.records if KEY in r.getMessage()]


def test_a_rejected_request_and_a_paused_limit(allow_loopback, chat_server, monkeypatch):
    chat_server.fail_next = [(400, {})]
    with pytest.raises(LLMRequestRejected, match=r"refused the request \(400\): .*simulated 400"):
        chat(endpoint(chat_server), messages=[{"role": "user", "content": "hi"}])
    monkeypatch.setattr(llm_sdk, "limits_before_call", lambda: "a limit of this step is paused after a 429")
    with pytest.raises(LLMUnavailable, match="not called: a limit of this step is paused"):
        chat(endpoint(chat_server), messages=[{"role": "user", "content": "hi"}])
    assert len(chat_server.completions()) == 1


def test_a_reply_over_the_size_cap_is_refused(allow_loopback, chat_server, monkeypatch):
    monkeypatch.setattr(llm_sdk, "MAX_REPLY_BYTES", 100)
    with pytest.raises(netguard.ResponseTooLarge):
        chat(endpoint(chat_server), messages=[{"role": "user", "content": "hi"}])


def test_a_429_on_a_limited_step_pauses_its_limit_instead_of_waiting(allow_loopback, llm_key, chat_server, drain):
    limit_create(name="model", concurrency=5)
    chat_server.fail_next = [(429, {"Retry-After": "3"})]
    node = {**llm_node(chat_server, prompt="hi"), "limits": [{"name": "model"}]}
    run = run_nodes([node], drain)
    step = StepRun.objects.get(run=run)
    attempt = Attempt.objects.filter(step=step).order_by("number").first()
    assert attempt.error_type == "LLMUnavailable" and "asked to retry after 3" in attempt.error
    assert limits_status(["model"])["model"][0]["paused_until"] is not None
    assert len(chat_server.completions()) == 1  # not waited out in place, not retried by the SDK
