"""What an operator meets first: the home page's demos and API link, and starting a run from the
workflow list with a Run dialog that checks the inputs against the workflow's input schema."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from engine.demos import demos_load
from engine.models import Run
from engine.services.scheduler import run_start
from engine.services.workflows import workflow_save
from tests.conftest import definition, node
from tests.e2e.conftest import screenshot

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

INPUTS = {
    "type": "object",
    "required": ["topic"],
    "properties": {
        "topic": {"type": "string", "examples": ["durable execution"]},
        "documents": {"type": "array", "items": {"type": "string"}, "maxItems": 2, "default": ["a", "b"]},
        "limit": {"type": "integer", "minimum": 1, "default": 3},
    },
}


def test_run_dialog_from_the_workflow_list_refuses_invalid_inputs_and_starts_with_what_was_typed(ui, console_errors):
    workflow_save(definition=definition("run-inputs", [node("a")], [], inputs=INPUTS))
    ui.goto(f"{ui.base}/workflows/")
    row = ui.locator('tr[data-workflow="run-inputs"]')
    row.get_by_role("button", name="Run", exact=True).click()
    dialog = ui.get_by_role("dialog", name="Run run-inputs")
    start = dialog.get_by_role("button", name="Start run")
    # Required fields are marked; defaults and examples come from the schema.
    expect(dialog.locator('[data-field="topic"] label')).to_contain_text("*")
    expect(dialog.locator("#run-input-topic")).to_have_attribute("aria-required", "true")
    expect(dialog.locator('[data-example="topic"]')).to_contain_text("durable execution")
    expect(dialog.locator('[data-default="documents"]')).to_contain_text('["a","b"]')
    expect(dialog.locator('[data-default="limit"]')).to_contain_text("3")
    # Nothing typed: the required topic is missing, so the run cannot start.
    expect(start).to_be_disabled()
    expect(dialog.locator("[data-run-problems]")).to_contain_text("topic")
    dialog.locator("#run-input-topic").fill("weft")
    expect(start).to_be_enabled()
    # JSON that does not parse yet blocks the start (it used to start the run with {}).
    dialog.locator("#run-input-documents").fill('["x", "y"')
    expect(dialog).to_contain_text("Not valid JSON yet")
    expect(start).to_be_disabled()
    # Valid JSON that breaks the schema blocks it too, naming the field.
    dialog.locator("#run-input-documents").fill('["x", "y", "z"]')
    expect(dialog.locator("[data-run-problems]")).to_contain_text("documents")
    expect(start).to_be_disabled()
    dialog.locator("#run-input-limit").fill("0")
    expect(dialog.locator("[data-run-problems]")).to_contain_text("limit")
    screenshot(ui, "run-dialog-invalid")
    dialog.locator("#run-input-documents").fill('["x", "y"]')
    dialog.locator("#run-input-limit").fill("2")
    expect(dialog.locator("[data-run-problems]")).to_have_count(0)
    start.click()
    ui.wait_for_url(f"{ui.base}/runs/*/")
    run = Run.objects.get(workflow__slug="run-inputs")
    assert run.inputs == {"topic": "weft", "documents": ["x", "y"], "limit": 2}
    assert str(run.pk) in ui.url


def test_home_page_points_at_the_demos_and_the_api_reference(ui, live_url):
    demos_load()
    ui.goto(f"{ui.base}/")
    demos = ui.locator("[data-demos]")
    expect(demos).to_contain_text("Start with a demo")
    expect(demos.locator("[data-demo]")).to_have_count(4)  # fan-out, research, triage, refund
    expect(demos.locator('[data-demo="demo-fanout-summarise"]').get_by_role("button", name="Run")).to_be_enabled()
    screenshot(ui, "home")
    demos.locator('[data-demo="demo-fanout-summarise"]').get_by_role("button", name="Run").click()
    expect(ui.get_by_role("dialog", name="Run demo-fanout-summarise")).to_be_visible()
    ui.get_by_role("dialog").get_by_role("button", name="Cancel").click()
    with ui.expect_navigation():
        ui.get_by_role("link", name="API", exact=True).click()
    assert ui.url == f"{live_url}/api/docs/"
    expect(ui.locator("#swagger-ui")).to_be_attached()


DIAMOND = """{
  "name": "Diamond", "slug": "diamond",
  "nodes": [{"id": "a", "type": "noop"}, {"id": "b", "type": "noop"}, {"id": "c", "type": "noop"},
            {"id": "d", "type": "noop"}],
  "edges": [{"source": "a", "target": "b"}, {"source": "a", "target": "c"}, {"source": "b", "target": "d"},
            {"source": "c", "target": "d"}]
}"""


def test_an_imported_definition_without_positions_is_laid_out_by_the_auto_layout(ui):
    ui.goto(f"{ui.base}/workflows/new/")
    ui.get_by_role("tab", name="JSON").click()
    ui.get_by_label("…or paste a definition").fill(DIAMOND)
    ui.get_by_role("button", name="Import", exact=True).click()
    nodes = ui.locator(".editor .react-flow__node")
    expect(nodes).to_have_count(4)
    # Layered left to right: b and c side by side between a and d, not four nodes in one row.
    ui.wait_for_function("""() => {
        const box = (id) => document.querySelector(`.react-flow__node[data-id="${id}"]`).getBoundingClientRect();
        const [a, b, c, d] = ["a", "b", "c", "d"].map(box);
        return Math.abs(b.y - c.y) > 40 && Math.abs(b.x - c.x) < 5 && a.x < b.x && b.x < d.x;
    }""")
    screenshot(ui, "editor-imported-layout")


def test_the_grid_shows_runs_as_columns_and_steps_as_rows_and_a_cell_opens_that_step(ui, drain):
    d = definition("grid-e2e", [node("a"), node("b", "tests.raise", retry={"max_attempts": 1})], [("a", "b")])
    wf = workflow_save(definition=d)[0]
    runs = []
    for _ in range(3):
        runs.append(run_start(workflow=wf, inputs={})[0])
        drain()
    ui.goto(f"{ui.base}/workflows/")
    ui.get_by_role("link", name="Grid of grid-e2e").click()
    grid = ui.get_by_role("table", name="Steps by run")
    expect(grid.locator("[data-grid-run]")).to_have_count(3)
    expect(grid.locator('[data-grid-cell="a"][data-status="succeeded"]')).to_have_count(3)
    expect(grid.locator('[data-grid-cell="b"][data-status="failed"]')).to_have_count(3)
    screenshot(ui, "workflow-grid")
    last = runs[-1]
    grid.get_by_role("link", name=f"b: Failed in run {str(last.pk)[-8:]}").click()
    ui.wait_for_url(f"{ui.base}/runs/{last.pk}/steps/b/")
    expect(ui.locator('[data-drawer-node="b"]')).to_be_visible()
