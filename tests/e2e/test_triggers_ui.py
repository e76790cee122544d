"""The Triggers tab and a step waiting for an event, in a real browser (light and dark screenshots); the event
trigger form, with its errors, scanned by axe-core in both modes."""

from __future__ import annotations

import json
import re

import pytest
from playwright.sync_api import expect

from engine.models import EventTrigger
from engine.services.events import event_trigger_create
from engine.services.scheduler import run_start
from engine.services.webhooks import webhook_create, webhook_receive
from engine.services.workflows import workflow_save
from tests.conftest import definition, node
from tests.e2e.conftest import screenshot
from tests.e2e.test_accessibility import AXE, axe_violations
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
    ui.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=ui.base)
    ui.get_by_role("button", name="Copy URL").click()
    expect(ui.get_by_role("button", name="Copied")).to_be_visible()
    assert ui.evaluate("navigator.clipboard.readText()") == f"{ui.base}/hooks/{described['id']}/"
    expect(ui.locator('[data-delivery-outcome="accepted"]')).to_have_count(1)
    expect(ui.locator('[data-delivery-outcome="invalid"]')).to_have_count(1)
    expect(ui.locator('[data-event-trigger="ticket.opened"]')).to_be_visible()
    ui.get_by_text("Example with curl").click()
    expect(ui.locator("pre.curl")).to_contain_text("webhook-signature: v1,$SIG")
    screenshot(ui, "triggers-webhooks")
    ui.get_by_role("button", name="Rotate secret").click()
    expect(ui.locator("[data-secret]")).to_contain_text("whsec_")
    ui.get_by_role("button", name="Toggle dark mode").click()
    expect(ui.locator("html")).to_have_attribute("data-theme", "dark")
    screenshot(ui, "triggers-webhooks-dark")
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


@pytest.mark.skipif(not AXE.exists(), reason="axe-core is not installed (npm ci in webui/frontend)")
def test_a_designer_makes_and_deletes_an_event_trigger_in_the_triggers_tab(ui, console_errors):
    ticket_workflow("tickets")
    console_errors.allow(f"status of 400 (Bad Request) at {ui.base}/workflows/tickets/triggers/event-triggers/new/")
    ui.goto(f"{ui.base}/workflows/tickets/triggers/")
    events = ui.locator("section.event-triggers")
    expect(events.get_by_text("No event triggers.")).to_be_visible()
    events.get_by_text("New event trigger", exact=True).click()
    form = ui.get_by_role("form", name="New event trigger")
    form.get_by_label("Event name").fill("ticket.opened")
    form.get_by_label("Filter", exact=True).fill("payload.priority >")
    form.get_by_label("Inputs (JSON)").fill('{"ticket": "{{ payload.id }}"}')
    form.get_by_role("button", name="Create event trigger").click()

    # refused: the form comes back open, what was typed kept, the error next to the field that has the focus
    form = ui.get_by_role("form", name="New event trigger")
    field = form.get_by_label("Filter", exact=True)
    expect(field).to_be_focused()
    expect(field).to_have_attribute("aria-invalid", "true")
    expect(field).to_have_accessible_description(re.compile(r"every event of that name\..*template syntax error"))
    expect(form.locator('[data-error="filter"]')).to_be_visible()
    expect(form.locator("[data-error]")).to_have_count(1)
    expect(form.get_by_label("Event name")).to_have_value("ticket.opened")
    expect(form.get_by_label("Inputs (JSON)")).to_have_value('{"ticket": "{{ payload.id }}"}')
    assert EventTrigger.objects.count() == 0
    found = {}
    for theme in ("light", "dark"):
        if theme == "dark":
            ui.get_by_role("button", name="Toggle dark mode").click()
            expect(ui.locator("html")).to_have_attribute("data-theme", "dark")
        form.scroll_into_view_if_needed()
        screenshot(ui, f"triggers-event-form-error-{theme}")
        if violations := axe_violations(ui):
            found[theme] = violations
    assert not found, json.dumps(found, indent=1)
    ui.get_by_role("button", name="Toggle dark mode").click()

    field.fill("payload.priority > 2")
    form.get_by_role("button", name="Create event trigger").click()
    expect(ui.get_by_text("Event trigger on ticket.opened created.")).to_be_visible()
    row = ui.locator('[data-event-trigger="ticket.opened"]')
    expect(row).to_contain_text("payload.priority > 2")
    expect(row).to_contain_text('{"ticket": "{{ payload.id }}"}')
    trigger = EventTrigger.objects.get()
    assert (trigger.filter, trigger.inputs, trigger.enabled) == ("payload.priority > 2",
                                                                 {"ticket": "{{ payload.id }}"}, True)
    screenshot(ui, "triggers-event-trigger")
    ui.get_by_role("button", name="Toggle dark mode").click()
    screenshot(ui, "triggers-event-trigger-dark")
    ui.get_by_role("button", name="Toggle dark mode").click()

    ui.get_by_role("button", name="Delete the trigger on ticket.opened").click()
    expect(ui.get_by_text("Event trigger deleted.")).to_be_visible()
    expect(ui.locator("[data-event-trigger]")).to_have_count(0)
    assert EventTrigger.objects.count() == 0
