"""Every page in a real browser: screenshots for review, live rows, reconnecting state, no console errors."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from engine.services.scheduler import run_cancel, run_start, step_complete
from engine.services.workflows import workflow_save
from tests.conftest import chain
from tests.e2e.conftest import screenshot

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_every_page_renders_and_lists_update_live(ui):
    wf = workflow_save(definition=chain("pages-e2e", 4), note="first")[0]
    first, _ = run_start(workflow=wf, inputs={})
    step_complete(run_id=first.pk, node_id="s1", output={"ok": True})

    ui.goto(f"{ui.base}/")
    screenshot(ui, "home")

    ui.goto(f"{ui.base}/workflows/")
    expect(ui.locator('tr[data-workflow="pages-e2e"]')).to_contain_text("Running")
    ui.get_by_role("searchbox").fill("nothing-matches")
    ui.get_by_role("button", name="Search").click()
    expect(ui.locator('tr[data-workflow="pages-e2e"]')).to_have_count(0)
    ui.goto(f"{ui.base}/workflows/")
    screenshot(ui, "workflows")

    ui.goto(f"{ui.base}/runs/")
    expect(ui.locator("#live")).to_have_attribute("data-state", "live")
    row = ui.locator(f'tr[data-run-id="{first.pk}"]')
    expect(row).to_contain_text("Running")
    # Live rows: a status change and a new run appear without reloading.
    run_cancel(run_id=first.pk)
    expect(row.locator(".run-status")).to_contain_text("Cancelled")
    second, _ = run_start(workflow=wf, inputs={})
    expect(ui.locator(f'tr[data-run-id="{second.pk}"]')).to_contain_text("Running")
    screenshot(ui, "runs")

    ui.goto(f"{ui.base}/queues/")
    expect(ui.locator('tr[data-queue="default"]')).to_be_visible()
    expect(ui.locator('tr[data-queue="default"] .depth')).to_have_text("1")
    screenshot(ui, "queues")

    ui.goto(f"{ui.base}/workflows/pages-e2e/edit/")
    expect(ui.locator(".editor .react-flow__node")).to_have_count(4)
    ui.get_by_role("tab", name="Versions").click()
    expect(ui.locator('[data-version="1"]')).to_contain_text("first")
    screenshot(ui, "editor")

    ui.goto(f"{ui.base}/runs/{second.pk}/")
    expect(ui.locator(".runview")).to_have_attribute("data-live", "true")
    # The minimap draws every step, not an empty box.
    expect(ui.locator(".runview .react-flow__minimap-node")).to_have_count(4)
    screenshot(ui, "run-graph")
    ui.get_by_role("button", name="Toggle dark mode").click()
    expect(ui.locator("html")).to_have_attribute("data-theme", "dark")
    # The canvas' zoom and fit buttons stay readable: their icons take the dark theme's text colour.
    zoom_in = ui.locator(".runview .react-flow__controls-zoomin")
    expect(zoom_in).to_have_css("color", "rgb(228, 231, 236)")
    assert zoom_in.evaluate("el => getComputedStyle(el).color !== getComputedStyle(el).backgroundColor")
    # The minimap dims what lies outside the view with the dark background, not a light grey.
    expect(ui.locator(".runview .react-flow__minimap-mask")).to_have_css("fill", "rgba(12, 17, 29, 0.65)")
    screenshot(ui, "run-graph-dark")

    # A dropped socket shows the reconnecting state and never passes stale status off as current;
    # what changed meanwhile is caught up after the reconnect.
    ui.evaluate("window.weft.socket.drop()")
    expect(ui.locator(".runview")).to_have_attribute("data-live", "false")
    expect(ui.get_by_role("status").filter(has_text="Reconnecting").first).to_be_visible()
    step_complete(run_id=second.pk, node_id="s1", output={"ok": True})
    expect(ui.locator(".runview")).to_have_attribute("data-live", "true", timeout=15_000)
    expect(ui.locator('.runview [data-node-id="s1"].wnode')).to_have_attribute("data-status", "succeeded")
    expect(ui.locator('.runview [data-node-id="s2"].wnode')).to_have_attribute("data-status", "queued")

    # The editor in dark mode (the choice is remembered): the palette's node types stay readable.
    ui.goto(f"{ui.base}/workflows/pages-e2e/edit/")
    expect(ui.locator("html")).to_have_attribute("data-theme", "dark")
    expect(ui.locator('[data-node-type="python"]')).to_have_css("color", "rgb(228, 231, 236)")
    expect(ui.locator(".editor .react-flow__controls-zoomin")).to_have_css("color", "rgb(228, 231, 236)")
    screenshot(ui, "editor-dark")


def test_large_fan_out_collapses_into_a_counted_group_that_expands(ui):
    from tests.conftest import definition, node

    fan = [node(f"p{i:02d}") for i in range(15)]
    d = definition("fan-e2e", [node("start"), *fan, node("join")],
                   [("start", n["id"]) for n in fan] + [(n["id"], "join") for n in fan])
    run, _ = run_start(workflow=workflow_save(definition=d)[0], inputs={})
    ui.goto(f"{ui.base}/runs/{run.pk}/")
    group = ui.locator(".runview [data-group]")
    expect(group).to_have_attribute("data-count", "15")
    expect(group).to_contain_text("15 pending")
    expect(ui.locator('.runview [data-node-id="p00"]')).to_have_count(0)
    step_complete(run_id=run.pk, node_id="start", output={})
    expect(group).to_contain_text("15 queued")  # the group's counts follow the live events
    screenshot(ui, "run-fan-out-group")
    group.click()
    expect(ui.locator(".runview .wnode[data-node-id]")).to_have_count(17)
    expect(ui.locator('.runview [data-node-id="p14"].wnode')).to_have_attribute("data-status", "queued")
