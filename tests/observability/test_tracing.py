"""Spans of runs executed in-process by the real executor, exported to the SDK's in-memory exporter."""

from __future__ import annotations

import pytest
from opentelemetry.trace import StatusCode

from engine.models import StepRun
from engine.observability import tracing
from engine.services.scheduler import run_start
from engine.services.workflows import workflow_save
from tests.conftest import definition, node

# Step and run spans are exported when their transaction commits.
pytestmark = pytest.mark.django_db(transaction=True)

NO_BACKOFF = {"max_attempts": 2, "backoff_s": 0, "jitter": 0}


def start(defn):
    workflow, _, _ = workflow_save(definition=defn)
    run, _ = run_start(workflow=workflow, inputs={})
    return run


def tree(exported) -> dict:
    """{span name: (parent name or None, span)} -- names are unique in these runs."""
    by_id = {s.context.span_id: s for s in exported}
    out = {}
    for s in exported:
        parent = by_id.get(s.parent.span_id) if s.parent else None
        assert s.name not in out, f"span name {s.name!r} twice"
        out[s.name] = (parent.name if parent else None, s)
    return out


def traceparent(span) -> str:
    return f"00-{span.context.trace_id:032x}-{span.context.span_id:016x}-01"


def test_agent_run_is_one_trace_run_step_attempt_journal(spans, drain, allow_loopback, chat_server, tool_server):
    run = start(definition("traced-agent", [{
        "id": "agent", "type": "agent", "retry": NO_BACKOFF,
        "config": {"base_url": chat_server.url + "/v1", "model": "gpt-4o-mini", "prompt": "work",
                   "tools": [{"name": "effect", "type": "http", "url": tool_server.url + "/effect",
                              "description": "apply", "parameters": {"type": "object"}}]}}], []))
    drain()
    assert StepRun.objects.get(run=run).status == "succeeded"
    exported = spans.get_finished_spans()
    assert {s.context.trace_id for s in exported} == {run.pk.int}
    spans_by_name = tree(exported)
    parents = {name: parent for name, (parent, _) in spans_by_name.items()}
    assert parents == {
        "run traced-agent": None,
        "step agent": "run traced-agent",
        "attempt agent#1": "step agent",
        "journal turn-1": "attempt agent#1",
        "journal tool-1-effect": "attempt agent#1",
        "journal turn-2": "attempt agent#1",
        "journal tool-2-effect": "attempt agent#1",
        "journal turn-3": "attempt agent#1",
    }
    attempt = spans_by_name["attempt agent#1"][1]
    assert attempt.attributes["weft.node_type"] == "agent"
    assert attempt.attributes["weft.outcome"] == "succeeded"
    assert spans_by_name["run traced-agent"][1].attributes["weft.status"] == "succeeded"
    # Each model call and tool call carries the trace context of its journal span.
    sent_to_model = [r["headers"].get("traceparent") for r in chat_server.completions()]
    assert sent_to_model == [traceparent(spans_by_name[f"journal turn-{n}"][1]) for n in (1, 2, 3)]
    sent_to_tool = [r["headers"].get("traceparent") for r in tool_server.requests]
    assert sent_to_tool == [traceparent(spans_by_name[f"journal tool-{n}-effect"][1]) for n in (1, 2)]


def test_retried_step_has_one_span_per_attempt_and_replayed_journal_entries(spans, drain):
    run = start(definition("traced-retry", [node("work", "obs.journal_fail_once", retry=NO_BACKOFF)], []))
    drain()
    assert StepRun.objects.get(run=run).status == "succeeded"
    exported = spans.get_finished_spans()
    attempts = [s for s in exported if s.name.startswith("attempt ")]
    assert [s.name for s in sorted(attempts, key=lambda s: s.start_time)] == ["attempt work#1", "attempt work#2"]
    first, second = sorted(attempts, key=lambda s: s.start_time)
    assert first.status.status_code == StatusCode.ERROR and first.attributes["weft.outcome"] == "failed"
    assert second.attributes["weft.outcome"] == "succeeded"
    step = next(s for s in exported if s.name == "step work")
    assert first.parent.span_id == second.parent.span_id == step.context.span_id
    journal = [(s.name, s.parent.span_id, s.attributes["weft.journal.replayed"])
               for s in sorted(exported, key=lambda s: s.start_time) if s.name.startswith("journal ")]
    assert journal == [
        ("journal sub-0", first.context.span_id, False),
        ("journal sub-1", first.context.span_id, False),
        ("journal sub-0", second.context.span_id, True),
        ("journal sub-1", second.context.span_id, False),
    ]
    failed_call = [s for s in exported if s.name == "journal sub-1"][0]
    assert failed_call.status.status_code == StatusCode.ERROR


def test_failed_run_marks_its_run_and_step_spans_as_errors(spans, drain):
    start(definition("traced-fail", [node("bad", "tests.raise", retry={"max_attempts": 1}), node("after")],
                     [("bad", "after")]))
    drain()
    by_name = {s.name: s for s in spans.get_finished_spans()}
    assert by_name["run traced-fail"].status.status_code == StatusCode.ERROR
    assert by_name["step bad"].status.status_code == StatusCode.ERROR
    assert by_name["step after"].attributes["weft.status"] == "upstream_failed"
    assert by_name["step after"].parent.span_id == by_name["run traced-fail"].context.span_id


def test_a_run_finished_by_its_last_steps_one_statement_exports_its_run_span(spans, drain, monkeypatch):
    from engine.core import hotpath

    finished = []
    finish = hotpath.finish_step_record
    monkeypatch.setattr(hotpath, "finish_step_record", lambda **kw: finished.append(kw["node_id"]) or finish(**kw))
    run = start(definition("traced-chain", [node("a"), node("b")], [("a", "b")]))
    drain()
    assert finished == ["b"]
    by_name = tree(spans.get_finished_spans())
    assert by_name["step b"][0] == "run traced-chain"
    assert by_name["run traced-chain"][1].attributes["weft.status"] == "succeeded"
    assert by_name["run traced-chain"][1].attributes["weft.run_id"] == str(run.pk)


def test_tracing_is_off_without_an_exporter(drain, settings):
    tracing.tracing_disable()
    settings.WEFT_OTEL_EXPORTER = ""
    run = start(definition("untraced", [node("a")], []))
    drain()
    assert StepRun.objects.get(run=run).status == "succeeded"
    assert tracing.tracer() is None
    assert tracing.inject_headers({"Accept": "*/*"}) == {"Accept": "*/*"}
    tracing.tracing_disable()


def test_inject_headers_adds_the_current_span(spans):
    with tracing.tracer().start_as_current_span("outer") as span:
        headers = tracing.inject_headers({})
    assert headers == {"traceparent": traceparent(span)}
