"""An agent's ``context``: conversations longer than ``max_tokens`` trimmed by a strategy, the decision journaled so
a resumed step sends the model the same messages. Against a loopback model server, run by the real executor."""

from __future__ import annotations

import pytest
from django.db.models.functions import Now

from engine.exceptions import GraphInvalid
from engine.models import Attempt, JournalEntry, StepRun
from engine.nodes.context_window import SUMMARY_PREFIX, SUMMARY_SYSTEM, ContextWindow, message_tokens, placeholder
from engine.services.scheduler import run_start
from engine.services.workflows import workflow_save
from engine.worker.recovery import recover_once
from tests.conftest import definition
from tests.fakes.servers import ChatServer
from tests.nodes.tasks import SimulatedCrash

pytestmark = pytest.mark.django_db

FAST_RETRY = {"max_attempts": 3, "backoff_s": 0, "jitter": 0}
SMALL_USAGE = lambda body: {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}  # noqa: E731


def page_agent(chat, context: dict, slug: str, prompt: str = "Read the pages", **page_args):
    node = {"id": "agent", "type": "agent", "retry": FAST_RETRY,
            "config": {"base_url": chat.url + "/v1", "model": "gpt-4o-mini", "prompt": prompt,
                       "tools": [{"name": "page", "type": "task", "function": "nodes_tests.page"}],
                       "context": context}}
    chat.tool_args = lambda n: {"i": n, **page_args}
    wf = workflow_save(definition=definition(slug, [node], []))[0]
    return run_start(workflow=wf)[0]


def is_summary_request(body: dict) -> bool:
    return body["messages"][0]["content"] == SUMMARY_SYSTEM


def turn_bodies(chat) -> list[dict]:
    return [r["body"] for r in chat.completions() if not is_summary_request(r["body"])]


def assert_pairings_kept(messages: list[dict]) -> None:
    """Every tool call is followed by its result, and every result answers the call just before it."""
    for i, m in enumerate(messages):
        if m["role"] == "assistant" and m.get("tool_calls"):
            ids = [c["id"] for c in m["tool_calls"]]
            assert [r.get("tool_call_id") for r in messages[i + 1:i + 1 + len(ids)]] == ids
        if m["role"] == "tool":
            before = messages[:i]
            last = next(b for b in reversed(before) if b["role"] != "tool")
            assert m["tool_call_id"] in [c["id"] for c in last.get("tool_calls") or []]


def test_drop_oldest_tool_results_trims_the_oldest_result_first_and_keeps_pairings(allow_loopback, drain):
    chat = ChatServer(tool_calls_total=4, tool_name="page", usage=SMALL_USAGE).start()
    try:
        run = page_agent(chat, {"max_tokens": 1500, "strategy": "drop_oldest_tool_results", "keep_last": 2}, "drop")
        drain()
        bodies = turn_bodies(chat)
    finally:
        chat.stop()
    step = StepRun.objects.get(run=run)
    assert step.status == "succeeded", step.error
    assert step.output["answer"] == "done after 4 tool calls"
    assert len(bodies) == 5 and not any(is_summary_request(r["body"]) for r in chat.completions())

    def contents(body):
        return {m["tool_call_id"]: m["content"] for m in body["messages"] if m["role"] == "tool"}

    assert not any(c.startswith("[tool result trimmed") for c in contents(bodies[2]).values())  # turn 3 fits
    turn4, turn5 = contents(bodies[3]), contents(bodies[4])
    assert turn4["call_0"].startswith("[tool result trimmed: ") and turn4["call_0"].endswith(" characters]")
    assert '"page 1 page 1' in turn4["call_1"] and '"page 2 page 2' in turn4["call_2"]
    assert turn5["call_0"] == turn4["call_0"] and turn5["call_1"].startswith("[tool result trimmed: ")
    assert '"page 3 page 3' in turn5["call_3"]
    for body in bodies:
        assert_pairings_kept(body["messages"])
        assert body["messages"][0] == {"role": "user", "content": "Read the pages"}

    journal = {e.key: e.result for e in JournalEntry.objects.filter(step=step)}
    assert [k for k in journal if k.startswith("context-")] == [f"context-{n}" for n in range(1, 6)]
    assert journal["context-3"]["trimmed"] == [] and journal["context-3"]["tokens"] <= 1500
    trimmed = journal["context-4"]["trimmed"]
    assert [(t["index"], t["tool_call_id"]) for t in trimmed] == [(2, "call_0")]
    assert turn4["call_0"] == placeholder(trimmed[0]["chars"])
    assert journal["context-4"]["tokens"] > 1500 >= journal["context-4"]["tokens_sent"]
    assert "page 0 page 0" in journal["tool-1-page"]["text"]  # the journal keeps the whole result


def run_summarizing(chat, slug: str, **page_args):
    return page_agent(chat, {"max_tokens": 1500, "strategy": "summarize", "keep_last": 2}, slug, **page_args)


def test_summarize_asks_the_model_once_and_replaces_the_oldest_part(allow_loopback, drain):
    chat = ChatServer(tool_calls_total=4, tool_name="page", usage=SMALL_USAGE, text_reply="Pages 0 and 1 read.").start()
    try:
        run = run_summarizing(chat, "summarize")
        drain()
        summaries = [r for r in chat.completions() if is_summary_request(r["body"])]
        bodies = turn_bodies(chat)
    finally:
        chat.stop()
    step = StepRun.objects.get(run=run)
    assert step.status == "succeeded", step.error
    assert step.output["answer"] == "done after 4 tool calls" and step.output["turns"] == 5
    assert len(summaries) == 1  # turn 4 was over the limit; after the summary turn 5 fits
    asked = summaries[0]["body"]
    assert "tools" not in asked and asked["max_tokens"] == 1500 // 4
    assert "page 0 page 0" in asked["messages"][1]["content"] and "page 2 page 2" not in asked["messages"][1]["content"]
    roles = [m["role"] for m in bodies[3]["messages"]]
    assert roles == ["user", "user", "assistant", "tool"]
    assert bodies[3]["messages"][1]["content"] == SUMMARY_PREFIX + "Pages 0 and 1 read."
    assert [m.get("tool_call_id") for m in bodies[3]["messages"]][-1] == "call_2"
    assert [m["role"] for m in bodies[4]["messages"]] == ["user", "user", "assistant", "tool", "assistant", "tool"]
    for body in bodies:
        assert_pairings_kept(body["messages"])
    context4 = JournalEntry.objects.get(step=step, key="context-4").result
    assert context4["summary"] == {"upto": 5, "messages": 4, "text": "Pages 0 and 1 read."}
    assert context4["usage"]["total_tokens"] == 2 and context4["model"] == "gpt-4o-mini"
    assert summaries[0]["headers"]["idempotency-key"] not in {r["headers"]["idempotency-key"]
                                                             for r in chat.completions() if r is not summaries[0]}
    assert Attempt.objects.get(step=step).metrics["context_summaries"] == 1


def test_a_resumed_step_sends_the_same_messages_and_does_not_summarize_again(allow_loopback, tmp_path, drain):
    flag = tmp_path / "crashed"
    flag.touch()  # the same tool arguments, without the crash
    clean_chat = ChatServer(tool_calls_total=4, tool_name="page", usage=SMALL_USAGE, text_reply="Read 0-1.").start()
    try:
        run_summarizing(clean_chat, "clean", crash_at=3, flag=str(flag))
        drain()
        clean = [r["body"] for r in clean_chat.completions()]
    finally:
        clean_chat.stop()

    flag.unlink()
    chat = ChatServer(tool_calls_total=4, tool_name="page", usage=SMALL_USAGE, text_reply="Read 0-1.").start()
    try:
        # the worker dies in the fourth tool call: after the summary (context-4) and turn 4 were journaled
        run = run_summarizing(chat, "crashed", crash_at=3, flag=str(flag))
        with pytest.raises(SimulatedCrash):
            drain()
        before_crash = len(chat.completions())
        StepRun.objects.filter(run=run).update(lease_expires_at=Now())  # the dead worker's lease runs out
        recover_once()
        drain()
        resumed = [r["body"] for r in chat.completions()]
        asks = chat.asks_per_key()
    finally:
        chat.stop()
    step = StepRun.objects.get(run=run)
    assert step.status == "succeeded", step.error
    assert list(Attempt.objects.filter(step=step).values_list("number", flat=True)) == [1, 2]
    assert before_crash == 5 and len(resumed) == 6  # 4 turns and the summary, then only turn 5
    assert set(asks.values()) == {1}
    assert sum(is_summary_request(b) for b in resumed) == 1
    assert resumed == clean  # the same bodies, in the same order, as a run that never stopped
    second = Attempt.objects.get(step=step, number=2).metrics
    assert second["llm_calls"] == 1 and "context_summaries" not in second


def test_a_context_too_small_for_what_is_kept_fails_the_step_naming_max_tokens(allow_loopback, drain):
    chat = ChatServer(tool_calls_total=0, tool_name="page").start()
    try:
        run = page_agent(chat, {"max_tokens": 256, "strategy": "drop_oldest_tool_results"}, "small",
                         prompt="Read the pages. " * 100)
        drain()
        sent = len(chat.completions())
    finally:
        chat.stop()
    step = StepRun.objects.get(run=run)
    assert step.status == "failed"
    assert "ContextTooLarge" in step.error and "context.max_tokens (256)" in step.error
    assert sent == 0 and Attempt.objects.filter(step=step).count() == 1  # not retried
    assert JournalEntry.objects.get(step=step, key="context-1").error_type == "ContextTooLarge"


@pytest.mark.parametrize("context, path, words", [
    ({"max_tokens": 100, "strategy": "summarize"}, "context.max_tokens", "`context.max_tokens` must be at least 256"),
    ({"max_tokens": 4096, "strategy": "forget"}, "context.strategy",
     "`context.strategy` must be one of `drop_oldest_tool_results`"),
    ({"max_tokens": 4096}, "context", "node `agent`: `context.strategy` is required"),
    ({"max_tokens": 4096, "strategy": "summarize", "keep_last": -1}, "context.keep_last",
     "`context.keep_last` must be at least 0"),
    ({"max_tokens": 4096, "strategy": "summarize", "keep": 2}, "context", "`context.keep` is not a known field"),
])
def test_bad_context_config_is_refused_at_save_naming_the_field(context, path, words):
    node = {"id": "agent", "type": "agent", "config": {"provider": "simulation", "prompt": "x", "context": context}}
    with pytest.raises(GraphInvalid) as err:
        workflow_save(definition=definition("bad-context", [node], []))
    problems = err.value.errors
    assert [p.path for p in problems] == [f"nodes[0].config.{path}"]
    assert words in problems[0].message


def test_the_estimate_counts_characters_and_scales_up_to_the_reported_prompt_tokens():
    window = ContextWindow({"max_tokens": 300, "strategy": "drop_oldest_tool_results", "keep_last": 0}, None)
    messages = [{"role": "user", "content": "x" * 400}]
    assert message_tokens(messages[0]) == 104 and window.tokens(window.view(messages)) == 104
    window.sent(window.view(messages))
    window.observe({"prompt_tokens": 208})  # the model counted twice as many
    assert window.tokens(window.view(messages)) == 208
    window.observe({"prompt_tokens": 50})  # fewer: the estimate is not lowered
    assert window.tokens(window.view(messages)) == 104


def test_prompt_tokens_reported_above_the_estimate_make_the_agent_trim_sooner(allow_loopback, drain):
    def twice_the_characters(body):  # a model whose tokenizer counts about twice what characters / 4 estimate
        prompt = sum(len(str(m.get("content") or "")) for m in body["messages"]) // 2
        return {"prompt_tokens": prompt, "completion_tokens": 1, "total_tokens": prompt + 1}

    chat = ChatServer(tool_calls_total=4, tool_name="page", usage=twice_the_characters).start()
    try:
        run = page_agent(chat, {"max_tokens": 1500, "strategy": "drop_oldest_tool_results", "keep_last": 2}, "scaled")
        drain()
    finally:
        chat.stop()
    step = StepRun.objects.get(run=run)
    assert step.status == "succeeded", step.error
    journal = {e.key: e.result for e in JournalEntry.objects.filter(step=step)}
    # unscaled, turn 3 fits (as in the first test); scaled by the reported count it does not
    assert [t["tool_call_id"] for t in journal["context-3"]["trimmed"]] == ["call_0"]
    assert journal["context-3"]["tokens"] > 1500
