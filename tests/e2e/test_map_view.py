"""A mapped node in the run view: one node with its items counted by status and a progress bar."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from engine.services.scheduler import run_start
from engine.services.workflows import workflow_save
from tests.conftest import definition, node
from tests.e2e.conftest import screenshot

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_a_mapped_node_shows_its_items_by_status_and_a_progress_bar(ui, drain):
    d = definition("map-e2e", [
        node("source", kwargs={"xs": "{{ inputs.xs }}"}),
        {**node("each", "tests.fail_at", kwargs={"item": "{{ item }}", "fail": [2, 5]}, retry={"max_attempts": 1}),
         "for_each": "{{ nodes.source.output.xs }}", "max_parallel": 3},
        node("after"),
    ], [("source", "each"), ("each", "after")])
    run, _ = run_start(workflow=workflow_save(definition=d)[0], inputs={"xs": list(range(8))})
    drain()
    ui.goto(f"{ui.base}/runs/{run.pk}/")
    expect(ui.locator(".runview")).to_have_attribute("data-live", "true")
    graph_node = ui.locator('.runview [data-node-id="each"].wnode')
    expect(graph_node).to_have_attribute("data-status", "failed")
    expect(ui.locator('.runview .wnode[data-node-id]')).to_have_count(3)  # the items are not nodes of their own
    progress = graph_node.get_by_role("progressbar", name="each items finished")
    expect(progress).to_have_attribute("aria-valuenow", "8")
    expect(progress).to_have_attribute("aria-valuemax", "8")
    counts = graph_node.locator(".wmap-counts")
    expect(counts.locator(".status-succeeded")).to_have_text("✓ 6")
    expect(counts.locator(".status-failed")).to_have_text("✕ 2")
    screenshot(ui, "map-node-light")
    ui.get_by_role("button", name="Toggle dark mode").click()
    expect(ui.locator("html")).to_have_attribute("data-theme", "dark")
    screenshot(ui, "map-node-dark")
