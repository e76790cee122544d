"""The Triggers tab and a step waiting for an event, in a real browser (light and dark screenshots)."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from engine.services.events import event_trigger_create
from engine.services.scheduler import run_start
from engine.services.webhooks import webhook_create, webhook_receive
from engine.services.workflows import workflow_save
from tests.conftest import definition, node
from tests.e2e.conftest import screenshot
from tests.triggers.conftest import signed, ticket_workflow

pytestmark = pytest.mark.e2e


def test_triggers_tab_and_an_event_wait_in_the_step_drawer(ui, drain):
    ticket_workflow("tickets")
    described, secret = webhook_create(workflow="tickets", description="help desk")
    for msg_id, body in (("msg_ok", {"ticket": "T-1"}), ("msg_bad", {"ticket": 5})):
        text, headers = signed(secret, body, msg_id=msg_id)
        webhook_receive(endpoint_id=described["id"], body=text.encode(), headers=headers)
    event_trigger_create(workflow="tickets", name="ticket.opened", filter="payload.priority > 2")

    ui.goto(f"{ui.base}/workflows/tickets/")
    ui.get_by_role("tab", name="Triggers").click()
    expect(ui.get_by_role("heading", name="Webhooks")).to_be_visible()
    expect(ui.locator("[data-webhook-url]")).to_contain_text(f"/hooks/{described['id']}/")
    expect(ui.locator('[data-delivery-outcome="accepted"]')).to_have_count(1)
    expect(ui.locator('[data-delivery-outcome="invalid"]')).to_have_count(1)
    expect(ui.locator('[data-event-trigger="ticket.opened"]')).to_be_visible()
    ui.get_by_text("Example with curl").click()
    expect(ui.locator("pre.curl")).to_contain_text("webhook-signature: v1,$SIG")
    screenshot(ui, "triggers")
    ui.get_by_role("button", name="Rotate secret").click()
    expect(ui.locator("[data-secret]")).to_contain_text("whsec_")
    ui.get_by_role("button", name="Toggle dark mode").click()
    expect(ui.locator("html")).to_have_attribute("data-theme", "dark")
    screenshot(ui, "triggers-dark")
    ui.get_by_role("button", name="Toggle dark mode").click()

    nodes = [{"id": "wait", "type": "wait_for_event",
              "config": {"event": "ticket.replied", "key": "{{ inputs.ticket }}", "timeout_s": 3600}}, node("after")]
    workflow_save(definition=definition("replies", nodes, [("wait", "after")]))
    run, _ = run_start(workflow="replies", inputs={"ticket": "T-42"})
    drain()
    ui.goto(f"{ui.base}/runs/{run.pk}/steps/wait/")
    banner = ui.locator('[data-event-wait="wait"]')
    expect(banner).to_contain_text("Waiting for the event ticket.replied with key T-42")
    expect(banner).to_contain_text("Without it within 3600 s the step fails")
    screenshot(ui, "step-waiting-for-event")
    ui.get_by_role("button", name="Toggle dark mode").click()
    screenshot(ui, "step-waiting-for-event-dark")
