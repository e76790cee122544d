"""A run waiting for its concurrency key in the browser: the runs list and the run view say why, and the view
follows the run live when a finish starts it; a run cancelled by the strategy shows the reason."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from engine.services.scheduler import run_start, step_complete
from engine.services.workflows import workflow_save
from tests.conftest import definition, node
from tests.e2e.conftest import screenshot

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def save(slug: str, strategy: str):
    return workflow_save(definition=definition(slug, [node("a")], [], inputs={"type": "object"}, concurrency={
        "key": "{{ inputs.user }}", "limit": 1, "strategy": strategy}))[0]


def test_a_waiting_run_says_why_and_starts_live_when_the_other_finishes(ui):
    wf = save("wait-e2e", "queue")
    first, _ = run_start(workflow=wf, inputs={"user": "ada"})
    waiting, _ = run_start(workflow=wf, inputs={"user": "ada"})
    ui.goto(f"{ui.base}/runs/?status=pending")
    row = ui.locator(f'tr[data-run-id="{waiting.pk}"]')
    expect(row.locator('[data-status="pending"]')).to_be_visible()
    expect(row.locator('[data-waiting="concurrency"]')).to_have_text("waiting for a run of key 'ada' to finish")
    ui.goto(f"{ui.base}/runs/{waiting.pk}/")
    view = ui.locator(".runview")
    expect(view).to_have_attribute("data-live", "true")
    banner = view.locator('[data-waiting="concurrency"]')
    expect(banner).to_contain_text("waiting for a run of key 'ada' to finish")
    expect(view.locator('[data-fact="started"] dd')).to_have_text("—")
    screenshot(ui, "run-waiting-for-concurrency")
    step_complete(run_id=first.pk, node_id="a")  # the first run finishes: the waiting one starts
    expect(view).to_have_attribute("data-run-status", "running")
    expect(banner).to_have_count(0)
    expect(view.locator('[data-fact="started"] dd')).not_to_have_text("—")


def test_a_run_cancelled_by_cancel_newest_shows_the_reason(ui):
    wf = save("newest-e2e", "cancel_newest")
    run_start(workflow=wf, inputs={"user": "ada"})
    cancelled, _ = run_start(workflow=wf, inputs={"user": "ada"})
    ui.goto(f"{ui.base}/runs/{cancelled.pk}/")
    view = ui.locator(".runview")
    expect(view).to_have_attribute("data-run-status", "cancelled")
    expect(view.locator("[data-cancelled]")).to_contain_text("not started: 1 run(s) of key 'ada' already running")
    expect(view.locator('[data-fact="started"] dd')).to_have_text("—")
