"""The step drawer's Conversation tab in a real browser, on real workers: the Refund agent demo (an MCP server
over stdio, the offline model simulation) asks for approval of a large refund, decided through the UI."""

from __future__ import annotations

import json
import re

import pytest
from playwright.sync_api import expect

from engine.demos import DEMO_DIR
from engine.models import StepRun
from engine.services.scheduler import run_start
from engine.services.workflows import workflow_save
from tests.conftest import finished, wait_for
from tests.e2e.conftest import screenshot

pytestmark = [pytest.mark.e2e, pytest.mark.workers, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def worker_env(worker_env) -> dict:
    return {**worker_env, "OPENAI_API_KEY": "", "WEFT_LLM_BASE_URL": ""}  # the labelled simulation answers


def open_waiting_refund(ui, workflow):
    run, _ = run_start(workflow=workflow, inputs={"request": "Order A-1002 arrived broken."})
    ui.goto(f"{ui.base}/runs/{run.pk}/steps/refund/")
    drawer = ui.locator('[data-drawer-node="refund"]')
    pending = drawer.locator("[data-tool-approval]")
    wait_for(lambda: StepRun.objects.filter(run=run, node_id="refund", waiting_reason="tool_approval").exists()
             or StepRun.objects.get(run=run, node_id="refund").status in ("failed", "succeeded"),
             timeout=90, message="the refund to wait for approval")
    step = StepRun.objects.get(run=run, node_id="refund")
    assert step.waiting_reason == "tool_approval", (step.status, step.error)
    expect(pending).to_be_visible(timeout=30_000)
    expect(drawer.get_by_role("tab", name="Conversation")).to_have_attribute("aria-selected", "true")
    return run, drawer, pending


def answer(run) -> str:
    run = wait_for(finished(run.pk), timeout=90, message="the refund run to finish")
    step = StepRun.objects.get(run=run, node_id="refund")
    assert run.status == "succeeded", step.error
    return step.output["answer"]


def test_approve_edit_and_approve_and_reject_a_tool_call_from_the_conversation(ui, workers):
    workflow = workflow_save(definition=json.loads((DEMO_DIR / "refund-agent.json").read_text()))[0]
    workers.start()

    run, drawer, pending = open_waiting_refund(ui, workflow)
    expect(pending).to_contain_text("orders__refund")
    expect(pending).to_contain_text("249")
    conversation = drawer.locator("[data-conversation]")
    expect(conversation.locator('[data-role="user"]')).to_contain_text("A-1002")
    expect(conversation.locator('[data-journal-key="tool-1-orders__lookup_order"]')).to_contain_text("Grace Hopper")
    expect(conversation.locator('[data-role="tools"]')).to_contain_text("lookup_order, refund")
    screenshot(ui, "conversation-approval")
    ui.get_by_role("button", name="Toggle dark mode").click()
    expect(ui.locator("html")).to_have_attribute("data-theme", "dark")
    screenshot(ui, "conversation-approval-dark")
    ui.get_by_role("button", name="Toggle dark mode").click()
    pending.get_by_role("button", name="Approve", exact=True).click()
    expect(conversation.locator('[data-role="decision"]')).to_contain_text("approved by designer", timeout=60_000)
    assert "Refunded 249.00 for order A-1002" in answer(run)

    run, drawer, pending = open_waiting_refund(ui, workflow)
    pending.get_by_role("button", name="Edit and approve").click()
    args = pending.get_by_label("Arguments")
    args.fill(re.sub(r'"amount": [0-9.]+', '"amount": 150', args.input_value()))
    pending.get_by_role("button", name="Approve edited call").click()
    expect(drawer.locator('[data-role="decision"]')).to_contain_text("(arguments edited)", timeout=60_000)
    assert "Refunded 150.00 for order A-1002" in answer(run)

    run, drawer, pending = open_waiting_refund(ui, workflow)
    pending.get_by_role("button", name="Reject", exact=True).click()
    pending.get_by_label("Rejection message").fill("Needs a photo of the damage first")
    pending.get_by_role("button", name="Reject call").click()
    expect(drawer.locator('[data-role="decision"]')).to_contain_text("rejected by designer", timeout=60_000)
    text = answer(run)
    assert "was not made" in text and "Needs a photo of the damage first" in text
    expect(drawer.locator('[data-role="assistant"]').last).to_contain_text("was not made", timeout=30_000)
    screenshot(ui, "conversation-rejected")
    drawer.get_by_role("button", name="Raw JSON").click()
    expect(drawer.locator("[data-conversation]")).to_contain_text("approval-2-orders__refund")
