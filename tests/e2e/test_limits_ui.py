"""The Limits page and a waiting step's drawer in a real browser, light and dark."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from engine.services.limits import limit_create
from engine.services.scheduler import run_start
from engine.services.workflows import workflow_save
from tests.conftest import definition, node
from tests.e2e.conftest import screenshot

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_limits_page_and_the_drawer_of_a_step_waiting_for_a_limit(ui):
    limit_create(name="openai", concurrency=1, rate={"limit": 60, "period_s": 60, "burst": 5})
    limit_create(name="unused", concurrency=2)
    limits = [{"name": "openai", "key": "{{ inputs.tenant }}"}]
    wf = workflow_save(definition=definition("limits-e2e", [node(f"call{i}", limits=limits) for i in range(3)], [],
                                             inputs={"type": "object"}))[0]
    run, _ = run_start(workflow=wf, inputs={"tenant": "acme"})  # no workers: one step admitted, two wait

    ui.goto(f"{ui.base}/")
    ui.get_by_role("navigation", name="Main").get_by_role("link", name="Limits").click()
    expect(ui.locator("#live")).to_have_attribute("data-state", "live")
    row = ui.locator('tr[data-limit="openai"][data-key="acme"]')
    expect(row.locator(".in-use")).to_have_text("1 / 1")
    expect(row.locator(".waiting")).to_have_text("2")
    expect(ui.locator('tr[data-limit="unused"]')).to_contain_text("not taken by any step yet")
    screenshot(ui, "limits")
    ui.get_by_role("button", name="Toggle dark mode").click()
    expect(ui.locator("html")).to_have_attribute("data-theme", "dark")
    screenshot(ui, "limits-dark")
    ui.get_by_role("button", name="Toggle dark mode").click()

    waiting = next(s for s in run.steps.all() if s.waiting_reason == "limit")
    ui.goto(f"{ui.base}/runs/{run.pk}/steps/{waiting.node_id}/")
    expect(ui.locator(".runview")).to_have_attribute("data-live", "true")
    banner = ui.locator(f'[data-limited="{waiting.node_id}"]')
    expect(banner).to_contain_text("Waiting for a limit: openai (key acme)")
    screenshot(ui, "run-step-waiting-for-limit")
