"""A mapped node in the run view: one node with its items counted by status and a progress bar."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from engine.services.scheduler import run_start
from engine.services.workflows import workflow_save
from tests.conftest import definition, node
from tests.e2e.conftest import screenshot
from tests.e2e.test_accessibility import axe_violations

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


def test_a_mapped_nodes_items_page_in_its_drawer_and_expand_in_the_timeline(ui, drain):
    failing = [3, 11, 17, 25]
    d = definition("map-items-e2e", [
        node("source", kwargs={"xs": "{{ inputs.xs }}"}),
        {**node("each", "tests.fail_at", kwargs={"item": "{{ item }}", "fail": failing}, retry={"max_attempts": 1}),
         "for_each": "{{ nodes.source.output.xs }}", "max_parallel": 4, "on_item_failure": "continue"},
        node("after"),
    ], [("source", "each"), ("each", "after")])
    run, _ = run_start(workflow=workflow_save(definition=d)[0], inputs={"xs": list(range(30))})
    drain()
    ui.goto(f"{ui.base}/runs/{run.pk}/")
    expect(ui.locator(".runview")).to_have_attribute("data-live", "true")
    ui.locator('.runview [data-node-id="each"].wnode').click()
    drawer = ui.get_by_role("complementary", name="Step each")
    expect(drawer.get_by_role("tab", name="Items (30)")).to_have_attribute("aria-selected", "true")
    table = drawer.get_by_role("table", name="Items of each")
    rows = table.locator("tbody tr")
    expect(rows).to_have_count(10)
    expect(rows.first).to_have_attribute("data-item", "0")
    expect(table.locator('tr[data-item="3"]')).to_have_attribute("data-status", "failed")
    expect(drawer.locator("[data-items-range]")).to_have_text("1–10 of 30")
    expect(drawer.get_by_role("button", name="Previous page")).to_be_disabled()
    screenshot(ui, "map-items-drawer-light")
    assert axe_violations(ui) == []

    drawer.get_by_role("button", name="Next page").click()
    expect(drawer.locator("[data-items-range]")).to_have_text("11–20 of 30")
    expect(rows.first).to_have_attribute("data-item", "10")
    failed_row = table.locator('tr[data-item="11"]')
    expect(failed_row).to_have_attribute("data-status", "failed")
    expect(failed_row.locator("td").nth(2)).to_have_text("1")  # attempts
    drawer.get_by_role("button", name="Next page").click()
    expect(rows.first).to_have_attribute("data-item", "20")
    expect(drawer.get_by_role("button", name="Next page")).to_be_disabled()
    drawer.get_by_role("button", name="Previous page").click()
    expect(rows.first).to_have_attribute("data-item", "10")

    # The item's own drawer: its error, its attempts; back to the list; a succeeded item's output.
    drawer.get_by_role("button", name="Open item 11", exact=True).click()
    item = ui.get_by_role("complementary", name="Step each[11]")
    expect(item.locator(".error-text")).to_contain_text("item 11")
    expect(ui).to_have_url(f"{ui.base}/runs/{run.pk}/steps/each%5B11%5D/")
    expect(item.get_by_role("button", name="Retry")).to_be_enabled()
    expect(item.get_by_role("button", name="Rerun from here")).to_have_count(0)  # an item is not rerun alone
    item.get_by_role("tab", name="Attempts (1)").click()
    expect(item.locator("tr[data-attempt='1']")).to_contain_text("item 11")
    screenshot(ui, "map-item-drawer-light")
    item.get_by_role("button", name="All items of each").click()
    expect(rows.first).to_have_attribute("data-item", "10")  # back on the page the item was opened from
    drawer.get_by_label("Status").select_option("failed")
    expect(rows).to_have_count(len(failing))
    expect(drawer.locator("[data-items-range]")).to_have_text(f"1–{len(failing)} of {len(failing)}")
    drawer.get_by_label("Status").select_option("")
    expect(rows).to_have_count(10)
    drawer.get_by_role("button", name="Open item 2", exact=True).click()
    expect(ui.get_by_role("complementary", name="Step each[2]").locator(".drawer-body")).to_contain_text('"item": 2')

    # The timeline: the map is one row with a density strip; expanded, one row per item.
    ui.get_by_role("tab", name="Timeline").click()
    map_row = ui.locator('.timeline [data-row="each"]')
    expect(map_row).to_have_attribute("data-row-kind", "map")
    assert map_row.locator(".strip-succeeded").count() > 0
    assert map_row.locator(".strip-failed").count() > 0
    expect(ui.locator('.timeline [data-row-kind="item"]')).to_have_count(0)
    screenshot(ui, "map-timeline-light")
    ui.get_by_role("button", name="Expand each").click()
    expect(ui.locator('.timeline [data-row-kind="item"]')).to_have_count(30)
    expect(ui.locator('.timeline [data-row="each[11]"] .tbar.outcome-failed')).to_have_count(1)
    expect(ui.locator('.timeline [data-row="each[12]"] .tbar.outcome-succeeded')).to_have_count(1)
    screenshot(ui, "map-timeline-expanded-light")
    ui.get_by_role("button", name="Toggle dark mode").click()
    expect(ui.locator("html")).to_have_attribute("data-theme", "dark")
    screenshot(ui, "map-timeline-expanded-dark")
    assert axe_violations(ui) == []
    ui.get_by_role("button", name="Collapse each").click()
    expect(ui.locator('.timeline [data-row-kind="item"]')).to_have_count(0)
    ui.get_by_role("tab", name="Graph").click()
    ui.locator('.runview [data-node-id="each"].wnode').click()
    drawer.get_by_role("button", name="Next page").click()
    expect(rows.first).to_have_attribute("data-item", "10")
    screenshot(ui, "map-items-drawer-dark")
    assert axe_violations(ui) == []
    drawer.get_by_role("button", name="Open item 11", exact=True).click()
    expect(ui.get_by_role("complementary", name="Step each[11]").locator(".error-text")).to_contain_text("item 11")
    screenshot(ui, "map-item-drawer-dark")


def test_an_expanded_map_of_many_items_groups_them_into_at_most_200_rows(ui, drain):
    d = definition("map-many-e2e", [
        node("source", kwargs={"xs": "{{ inputs.xs }}"}),
        {**node("each", kwargs={"item": "{{ item }}"}), "for_each": "{{ nodes.source.output.xs }}"},
    ], [("source", "each")])
    run, _ = run_start(workflow=workflow_save(definition=d)[0], inputs={"xs": list(range(450))})
    drain()
    ui.goto(f"{ui.base}/runs/{run.pk}/?tab=timeline")
    expect(ui.locator(".runview")).to_have_attribute("data-live", "true")
    expect(ui.locator('.timeline [data-row="each"]')).to_have_attribute("data-row-kind", "map")
    ui.get_by_role("button", name="Expand each").click()
    expect(ui.get_by_role("button", name="Collapse each")).to_have_attribute("aria-expanded", "true")
    expect(ui.locator('.timeline [data-row="each[0–2]"]')).to_have_attribute("data-row-kind", "group")
    expect(ui.locator('.timeline [data-row-kind="item"]')).to_have_count(0)
    ui.locator(".timeline-scroll").evaluate("el => { el.scrollTop = el.scrollHeight; }")
    expect(ui.locator('.timeline [data-row="each[447–449]"]')).to_have_attribute("data-row-kind", "group")
    expect(ui.locator('.timeline [data-label="each:note"]')).to_have_text("450 items, 3 per row (at most 200 rows)")
    screenshot(ui, "map-timeline-grouped-light")
