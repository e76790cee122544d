"""Streamed model replies (``"stream": true`` on llm and agent nodes) through the official SDKs, against real
loopback servers that stream server-sent events: the reply is the one the non-streamed call gives, the journal
records only the finished reply, and the text so far is published to the run's listeners as it arrives."""

from __future__ import annotations

import pytest

from engine.core import events
from engine.models import JournalEntry, StepRun
from tests.nodes.test_agent import agent_node, effect_tool, start
from tests.nodes.test_anthropic import MODEL, claude_node
from tests.nodes.test_llm import llm_node, run_nodes

pytestmark = pytest.mark.django_db

# The anthropic SDK takes seconds to import: its cases are slow (make test runs them, make test-fast does not).
ANTHROPIC = pytest.param("anthropic", marks=pytest.mark.slow)
TEXT = "Weft streams this reply one word at a time to whoever watches the run"


@pytest.fixture
def published(monkeypatch, settings):
    """What engine.core.events.publish_text is given (it still sends it), each piece at once."""
    settings.WEFT_STREAM_INTERVAL_S = 0
    sent = []
    real = events.publish_text

    def spy(run_id, **message):
        sent.append(message)
        real(run_id, **message)

    monkeypatch.setattr(events, "publish_text", spy)
    return sent


def texts(published, key: str) -> list[str]:
    return [m["text"] for m in published if m["key"] == key]


@pytest.mark.parametrize("provider", ["openai", ANTHROPIC])
def test_an_llm_reply_streams_and_the_journal_keeps_the_finished_one(provider, allow_loopback, llm_key, chat_server,
                                                                      messages_server, published, drain):
    if provider == "openai":
        chat_server.text_reply = TEXT
        node = llm_node(chat_server, prompt="hi", stream=True)
        sent = chat_server.completions
    else:
        node = claude_node(messages_server, prompt=TEXT, stream=True)
        sent = messages_server.messages
    run = run_nodes([node], drain)
    step = StepRun.objects.get(run=run)
    assert run.status == "succeeded", step.error
    full = TEXT if provider == "openai" else f"echo: {TEXT}"
    assert step.output["text"] == full and step.output["finish_reason"] == "stop"
    assert step.output["usage"]["total_tokens"] > 0 and step.output["usage"]["completion_tokens"] == 5
    assert sent()[0]["body"]["stream"] is True
    entry = JournalEntry.objects.get(step=step, key="completion")
    assert entry.result["message"] == {"role": "assistant", "content": full}
    pieces = texts(published, "completion")
    assert len(pieces) == len(full.split(" ")) + 1  # each word as it came, then the whole reply, done
    assert all(full.startswith(p) for p in pieces) and pieces[-1] == full
    assert [m["done"] for m in published] == [False] * (len(pieces) - 1) + [True]
    assert {(m["node_id"], m["attempt"]) for m in published} == {("ask", 1)}


@pytest.mark.parametrize("provider", ["openai", ANTHROPIC])
def test_a_streamed_agent_gets_its_tool_calls_whole(provider, allow_loopback, llm_key, chat_server, messages_server,
                                                    tool_server, published, drain):
    if provider == "openai":
        chat_server.tool_calls_total, chat_server.calls_per_turn = 3, 2
        node = agent_node(chat_server, [effect_tool(tool_server)], credential="llm-key", stream=True)
    else:
        node = {"id": "agent", "type": "agent", "retry": {"max_attempts": 1},
                "config": {"provider": "anthropic", "base_url": messages_server.url, "model": MODEL,
                           "credential": "llm-key", "prompt": "Do the work", "tools": [effect_tool(tool_server)],
                           "stream": True}}
    run = start(node, slug=f"stream-agent-{provider}")
    drain()
    step = StepRun.objects.get(run=run)
    assert step.status == "succeeded", step.error
    assert sorted(r["body"]["i"] for r in tool_server.requests) == [0, 1, 2][:step.output["tool_calls"]]
    first = JournalEntry.objects.get(step=step, key="turn-1").result["message"]
    calls = first["tool_calls"]
    assert calls[0]["function"] == {"name": "effect", "arguments": '{"i": 0}'} and calls[0]["id"]
    last = f"turn-{step.output['turns']}"
    assert texts(published, last)[-1] == step.output["answer"]
    if provider == "anthropic":  # its tool-use turns say something first, streamed too
        assert texts(published, "turn-1")[-1] == "Calling effect."


def test_a_stream_cut_off_midway_fails_the_call_as_unavailable(allow_loopback, llm_key, chat_server, published,
                                                                drain):
    chat_server.text_reply = TEXT
    chat_server.stream_cut_after = 4  # events, then the connection closes without [DONE]
    run = run_nodes([llm_node(chat_server, prompt="hi", stream=True)], drain)
    step = StepRun.objects.get(run=run)
    assert step.status == "failed"
    assert step.error.startswith("LLMUnavailable") or step.error.startswith("LLMBadResponse"), step.error
    assert published and published[-1]["done"] is True  # the view stops showing the reply as being written
