"""The demo workflows load, and run offline on the labelled model simulation."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command

from engine.integrations.llm_simulation import SIMULATION_LABEL
from engine.models import JournalEntry, StepRun, Workflow, WorkflowVersion
from engine.services.scheduler import run_start, step_approve

pytestmark = pytest.mark.django_db

DEMOS = {"demo-research-agent", "demo-support-triage", "demo-fanout-summarise", "demo-refund-agent"}


@pytest.fixture
def offline(settings):
    settings.OPENAI_API_KEY, settings.WEFT_LLM_BASE_URL = "", ""
    out = io.StringIO()
    call_command("load_demos", stdout=out)
    return out.getvalue()


def outputs(run) -> dict:
    return dict(StepRun.objects.filter(run=run).values_list("node_id", "output"))


def test_load_demos_saves_four_workflows_once(offline):
    assert set(Workflow.objects.values_list("slug", flat=True)) == DEMOS
    out = io.StringIO()
    call_command("load_demos", stdout=out)
    assert out.getvalue().count(": exists") == 4
    assert WorkflowVersion.objects.count() == 4


def test_research_demo_makes_about_30_tool_calls_on_the_offline_site(offline, drain):
    run, _ = run_start(workflow="demo-research-agent", inputs={"topic": "durable agents"})
    drain()
    run.refresh_from_db()
    assert run.status == "succeeded"
    research = StepRun.objects.get(run=run, node_id="research")
    assert 25 <= research.output["tool_calls"] <= 35 and research.output["simulated"] is True
    assert research.output["answer"].startswith(SIMULATION_LABEL)
    assert "durable agents" in research.output["answer"]
    keys = JournalEntry.objects.filter(step=research).values_list("key", flat=True)
    assert sum(k.endswith("-take_note") for k in keys) >= 8 and any(k.endswith("-list_notes") for k in keys)
    fetched = [e.result for e in JournalEntry.objects.filter(step=research, key__endswith="-web_fetch")]
    assert all(page["status"] == 200 and page["simulated_site"] for page in fetched)
    assert run.outputs["report"]["simulated"] is True


def test_support_triage_demo_classifies_branches_waits_for_approval_and_posts(offline, allow_loopback, tool_server,
                                                                              drain):
    inputs = {"ticket": "You charged me twice, please refund.", "webhook_url": tool_server.url + "/echo"}
    run, _ = run_start(workflow="demo-support-triage", inputs=inputs)
    drain()
    assert outputs(run)["classify"]["json"]["category"] == "billing"
    assert StepRun.objects.get(run=run, node_id="approve_refund").waiting_reason == "approval"
    assert StepRun.objects.get(run=run, node_id="draft_reply").status == "skipped"
    step_approve(run_id=run.pk, node_id="approve_refund", actor="alice")
    drain()
    run.refresh_from_db()
    assert run.status == "succeeded"
    posted = tool_server.requests[-1]
    assert posted["body"] == {"action": "refund", "summary": "Customer asks for a refund of a duplicate charge.",
                              "approved_by": "alice"}
    assert posted["headers"]["idempotency-key"].startswith("weft-")


def test_support_triage_demo_answers_other_tickets_with_a_draft(offline, drain):
    run, _ = run_start(workflow="demo-support-triage", inputs={"ticket": "How do I export my data?"})
    drain()
    run.refresh_from_db()
    assert run.status == "succeeded"
    assert StepRun.objects.get(run=run, node_id="approve_refund").status == "skipped"
    assert outputs(run)["draft_reply"]["text"].startswith(SIMULATION_LABEL)


def test_fanout_demo_summarises_each_document_and_joins(offline, drain):
    docs = ["alpha one", "beta two", "gamma three", "delta four"]
    run, _ = run_start(workflow="demo-fanout-summarise", inputs={"documents": docs})
    drain()
    run.refresh_from_db()
    assert run.status == "succeeded"
    summaries = run.outputs["join"]["summaries"]
    assert len(summaries) == 4 and all(doc in s for doc, s in zip(docs, summaries, strict=True))
    assert run.outputs["join"]["simulated"] is True


def test_demos_use_a_real_model_when_one_is_configured(settings, chat_server, drain):
    settings.WEFT_LLM_BASE_URL, settings.OPENAI_API_KEY = chat_server.url + "/v1", "sk-demo"
    call_command("load_demos", stdout=io.StringIO())
    run, _ = run_start(workflow="demo-fanout-summarise", inputs={"documents": ["a", "b", "c", "d"]})
    drain()
    run.refresh_from_db()
    assert run.status == "succeeded"
    assert len(chat_server.completions()) == 4
    assert run.outputs["join"]["simulated"] is False


@pytest.mark.slow  # starts the demo's MCP server process: seconds
def test_refund_demo_looks_up_over_mcp_and_waits_for_approval_of_a_large_refund(offline, drain):
    from engine.services.tool_approvals import tool_call_decide

    run, _ = run_start(workflow="demo-refund-agent", inputs={"request": "Order A-1002 arrived broken."})
    drain()
    step = StepRun.objects.get(run=run, node_id="refund")
    assert (step.status, step.waiting_reason) == ("waiting", "tool_approval")
    call = step.waiting_detail["tool_call"]
    assert call["name"] == "orders__refund" and call["arguments"]["amount"] == 249.0
    tool_call_decide(run_id=run.pk, node_id="refund", tool_call=call["id"], approve=True, actor="alice",
                     arguments={**call["arguments"], "amount": 200.0})
    drain()
    step.refresh_from_db()
    assert step.status == "succeeded", step.error
    assert step.output["answer"].startswith(SIMULATION_LABEL)
    assert "Refunded 200.00 for order A-1002" in step.output["answer"]
    keys = list(JournalEntry.objects.filter(step=step).values_list("key", flat=True))
    assert keys == ["mcp-tools-orders", "turn-1", "tool-1-orders__lookup_order", "turn-2", "approval-2-orders__refund",
                    "tool-2-orders__refund", "turn-3"]


def test_refund_demo_refunds_a_small_order_without_approval(offline, drain):
    run, _ = run_start(workflow="demo-refund-agent", inputs={"request": "Please refund A-1001."})
    drain()
    step = StepRun.objects.get(run=run, node_id="refund")
    assert step.status == "succeeded", step.error
    assert "Refunded 19.00 for order A-1001" in step.output["answer"]
