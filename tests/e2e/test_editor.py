"""Designing a workflow in the browser: palette, connections, config form, validation, save, run."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from engine.models import Workflow
from engine.services.workflows import workflow_save
from tests.e2e.conftest import screenshot

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def canvas_node(page, node_id):
    return page.locator(f'.react-flow__node[data-id="{node_id}"]')


def connect(page, source, target):
    """Drag from ``source``'s handle to ``target``'s as a person would, in several pointer moves (one jump can
    be lost on a loaded machine), and wait for the new edge."""
    edges = page.locator(".editor .react-flow__edge")
    before = edges.count()
    start = page.locator(f'.react-flow__node[data-id="{source}"] .react-flow__handle.source').bounding_box()
    end = page.locator(f'.react-flow__node[data-id="{target}"] .react-flow__handle.target').bounding_box()
    page.mouse.move(start["x"] + start["width"] / 2, start["y"] + start["height"] / 2)
    page.mouse.down()
    page.mouse.move(end["x"] + end["width"] / 2, end["y"] + end["height"] / 2, steps=12)
    page.mouse.up()
    expect(edges).to_have_count(before + 1)


@pytest.mark.workers
def test_design_three_nodes_fix_validation_save_run_and_watch_them_succeed(ui, workers):
    workers.start()
    ui.goto(f"{ui.base}/workflows/new/")
    ui.get_by_label("Name", exact=True).fill("Design E2E")
    expect(ui.get_by_label("Slug")).to_have_value("design-e2e")

    pane = ui.locator(".editor .react-flow__pane")
    for node_type, x in (("python", 80), ("noop", 340), ("noop", 600)):
        ui.locator(f'[data-node-type="{node_type}"]').drag_to(pane, target_position={"x": x, "y": 160})
    expect(ui.locator(".editor .react-flow__node")).to_have_count(3)
    for node_id in ("python_1", "noop_1", "noop_2"):
        expect(canvas_node(ui, node_id)).to_be_visible()
    # Each node lands where it was dropped (the first one too): left to right, on one line.
    boxes = [canvas_node(ui, node_id).bounding_box() for node_id in ("python_1", "noop_1", "noop_2")]
    assert boxes[0]["x"] < boxes[1]["x"] < boxes[2]["x"], boxes
    assert max(b["y"] for b in boxes) - min(b["y"] for b in boxes) < 5, boxes

    connect(ui, "python_1", "noop_1")
    connect(ui, "noop_1", "noop_2")
    expect(ui.locator(".editor .react-flow__edge")).to_have_count(2)

    # The python node lacks its required "function": the error shows on that node.
    bad = ui.locator('[data-node-id="python_1"]')
    expect(bad).to_have_attribute("data-invalid", "true")
    expect(bad).to_contain_text("function")
    expect(ui.locator('[data-node-id="noop_1"]')).to_have_attribute("data-invalid", "false")
    expect(ui.locator(".editor")).to_have_attribute("data-valid", "false")
    screenshot(ui, "editor-validation-error")

    canvas_node(ui, "python_1").click()
    ui.locator("#cfg-python_1-function").fill("tests.noop")
    expect(bad).to_have_attribute("data-invalid", "false")
    expect(ui.locator(".editor")).to_have_attribute("data-valid", "true")
    screenshot(ui, "editor-valid")

    ui.get_by_role("button", name="Save…").click()
    ui.get_by_label("Note").fill("first version")
    ui.get_by_role("button", name="Save version").click()
    expect(ui.get_by_role("status").filter(has_text="Saved version 1")).to_be_visible()
    expect(ui.locator(".editor")).to_have_attribute("data-dirty", "false")
    wf = Workflow.objects.get(slug="design-e2e")
    saved = wf.current_version.definition
    assert sorted(n["id"] for n in saved["nodes"]) == ["noop_1", "noop_2", "python_1"]
    assert {(e["source"], e["target"]) for e in saved["edges"]} == {("python_1", "noop_1"), ("noop_1", "noop_2")}
    assert wf.current_version.note == "first version"

    ui.get_by_role("button", name="Run…").click()
    ui.get_by_role("button", name="Start run").click()
    ui.wait_for_url(f"{ui.base}/runs/*/")
    ui.evaluate("window.__sameDocument = true")
    for node_id in ("python_1", "noop_1", "noop_2"):
        expect(ui.locator(f'.runview [data-node-id="{node_id}"].wnode')).to_have_attribute(
            "data-status", "succeeded", timeout=30_000)
    expect(ui.locator(".runview")).to_have_attribute("data-run-status", "succeeded")
    assert ui.evaluate("window.__sameDocument") is True  # watched live, no reload
    screenshot(ui, "run-designed-workflow")


def test_save_is_disabled_with_the_reason_while_the_definition_has_problems(ui):
    ui.goto(f"{ui.base}/workflows/new/")
    save = ui.get_by_role("button", name="Save…")
    expect(save).to_be_disabled()  # no nodes yet
    ui.get_by_label("Name", exact=True).fill("Broken E2E")
    ui.locator('[data-node-type="python"]').click()  # keyboard/click path: adds at the centre
    expect(ui.locator(".editor .react-flow__node")).to_have_count(1)
    expect(ui.locator('[data-node-id="python_1"]')).to_have_attribute("data-invalid", "true")
    reason = ("Fix the problem listed under the canvas first: the server refuses to save a workflow that does not "
              "validate.")
    expect(save).to_be_disabled()
    expect(save).to_have_attribute("title", reason)
    expect(save).to_have_accessible_description(reason)
    ui.locator(".editor .react-flow__pane").click()
    ui.keyboard.press("Control+s")  # the shortcut is refused too, saying why
    expect(ui.get_by_role("status").filter(has_text="Not saved: Fix the problem")).to_be_visible()
    expect(ui.get_by_role("dialog")).to_have_count(0)
    screenshot(ui, "editor-save-disabled")

    canvas_node(ui, "python_1").click()
    ui.locator("#cfg-python_1-function").fill("tests.noop")
    expect(ui.locator(".editor")).to_have_attribute("data-valid", "true")
    expect(save).to_be_enabled()
    expect(save).to_have_attribute("title", "Save as a new version (Ctrl+S)")
    ui.locator("#cfg-python_1-function").fill("")
    expect(save).to_be_disabled()
    assert not Workflow.objects.filter(slug="broken-e2e").exists()


def test_a_save_the_server_refuses_keeps_the_unsaved_graph_and_shows_why(ui, console_errors):
    console_errors.allow("status of 409 (Conflict) at " + ui.base + "/api/workflows/")
    workflow_save(definition={"name": "Taken", "slug": "taken-e2e", "nodes": [{"id": "a", "type": "noop"}]})
    ui.goto(f"{ui.base}/workflows/new/")
    ui.get_by_label("Name", exact=True).fill("Taken E2E")  # a valid definition whose slug another workflow has
    ui.locator('[data-node-type="noop"]').click()
    ui.locator('[data-node-type="noop"]').click()
    expect(ui.locator(".editor .react-flow__node")).to_have_count(2)
    expect(ui.locator(".editor")).to_have_attribute("data-valid", "true")
    ui.get_by_role("button", name="Save…").click()
    ui.get_by_role("button", name="Save version").click()
    expect(ui.get_by_role("status").filter(has_text="Not saved")).to_contain_text("already exists")
    expect(ui.locator(".editor .react-flow__node")).to_have_count(2)
    expect(ui.locator(".editor")).to_have_attribute("data-dirty", "true")
    wf = Workflow.objects.get(slug="taken-e2e")
    assert wf.versions.count() == 1 and wf.current_version.definition["name"] == "Taken"


IMPORTED = """{
  "name": "Tools E2E", "slug": "tools-e2e",
  "inputs": {"type": "object", "required": ["x"], "properties": {"x": {"type": "integer"}}},
  "nodes": [
    {"id": "add", "type": "python", "config": {"function": "tests.add", "kwargs": {"a": "{{ inputs.x }}", "b": 1}}},
    {"id": "done", "type": "noop"}
  ],
  "edges": [{"source": "add", "target": "done"}]
}"""


def test_editor_tools_undo_redo_copy_paste_delete_import_layout_versions_and_run_inputs(ui):
    from engine.models import Run

    ui.goto(f"{ui.base}/workflows/new/")
    nodes = ui.locator(".editor .react-flow__node")
    ui.locator('[data-node-type="noop"]').click()
    expect(nodes).to_have_count(1)
    canvas_node(ui, "noop_1").click()
    ui.keyboard.press("Control+c")
    ui.keyboard.press("Control+v")
    expect(nodes).to_have_count(2)
    ui.keyboard.press("Control+z")
    expect(nodes).to_have_count(1)
    ui.keyboard.press("Control+Shift+z")
    expect(nodes).to_have_count(2)
    canvas_node(ui, "noop_2").click()
    ui.keyboard.press("Delete")
    expect(nodes).to_have_count(1)
    ui.keyboard.press("?")
    expect(ui.get_by_role("dialog", name="Keyboard shortcuts")).to_be_visible()
    ui.keyboard.press("Escape")

    ui.get_by_role("tab", name="JSON").click()
    ui.get_by_label("…or paste a definition").fill(IMPORTED)
    ui.get_by_role("button", name="Import", exact=True).click()
    expect(nodes).to_have_count(2)
    expect(canvas_node(ui, "add")).to_be_visible()
    # Imported without positions, the nodes are laid out (left to right); dragged out of place, the
    # auto-layout puts "done" back in line.
    ui.wait_for_function("() => { const box = (id) => document.querySelector(`.react-flow__node[data-id=${id}]`)"
                         ".getBoundingClientRect(); return box('done').x - box('add').x > 100; }")
    ui.wait_for_timeout(300)  # the import's fitView animation
    laid_out = canvas_node(ui, "done").bounding_box()
    canvas_node(ui, "done").click()
    for _ in range(12):
        ui.keyboard.press("Shift+ArrowDown")
    ui.wait_for_function("(b) => document.querySelector('.react-flow__node[data-id=done]').getBoundingClientRect().y"
                         " - b.y > 20", arg=laid_out)
    before = canvas_node(ui, "done").bounding_box()
    ui.get_by_role("button", name="Auto-layout").click()
    expect(ui.locator(".editor")).to_have_attribute("data-valid", "true")
    ui.wait_for_function("(b) => { const r = document.querySelector('.react-flow__node[data-id=done]')"
                         ".getBoundingClientRect(); return Math.abs(r.x - b.x) > 5 || Math.abs(r.y - b.y) > 5; }",
                         arg=before)

    ui.keyboard.press("Control+s")
    ui.get_by_label("Note").fill("imported")
    ui.get_by_role("button", name="Save version").click()
    expect(ui.get_by_role("status").filter(has_text="Saved version 1")).to_be_visible()
    ui.wait_for_url(f"{ui.base}/workflows/tools-e2e/edit/")
    ui.get_by_role("tab", name="Versions").click()
    ui.locator('[data-version="1"]').get_by_role("button", name="Compare with the editor").click()
    expect(ui.get_by_label("Changes since v1")).to_contain_text("No changes since v1.")

    ui.get_by_role("button", name="Run…").click()
    dialog = ui.get_by_role("dialog")
    dialog.get_by_label("x").fill("3")
    dialog.get_by_role("button", name="Start run").click()
    ui.wait_for_url(f"{ui.base}/runs/*/")
    run = Run.objects.get(workflow__slug="tools-e2e")
    assert run.inputs == {"x": 3}
    expect(ui.locator(".runview")).to_have_attribute("data-run-id", str(run.pk))


def test_export_json_downloads_the_saved_definition(ui):
    import json

    from engine.services.workflows import workflow_save

    saved = {
        "name": "Export E2E", "slug": "export-e2e", "description": "round trip through a file",
        "inputs": {"type": "object", "required": ["n"], "properties": {"n": {"type": "integer"}}},
        "nodes": [
            {"id": "fetch", "type": "python", "name": "Fetch",
             "config": {"function": "tests.add", "kwargs": {"a": "{{ inputs.n }}", "b": 2}},
             "queue": "fast", "retry": {"max_attempts": 4, "backoff_s": 0.5}, "timeout_s": 30,
             "position": {"x": 40, "y": 120}},
            {"id": "gate", "type": "branch",
             "config": {"cases": [{"branch": "big", "when": "{{ nodes.fetch.output > 3 }}"}], "default": "small"},
             "position": {"x": 300, "y": 120}},
            {"id": "done", "type": "noop", "trigger_rule": "all_done", "position": {"x": 560, "y": 60}},
            # Node fields the editor has no panel for are kept too.
            {"id": "each", "type": "python", "config": {"function": "tests.noop", "kwargs": {"x": "{{ item }}"}},
             "for_each": "{{ [1, 2, 3] }}", "max_parallel": 2, "on_item_failure": "continue", "priority": 5,
             "position": {"x": 560, "y": 200}},
        ],
        "edges": [{"source": "fetch", "target": "gate"}, {"source": "gate", "target": "done", "branch": "big"},
                  {"source": "fetch", "target": "each"}],
        # Fields the editor has no panel for: kept as they were (what it exports is what it saves).
        "budget": {"max_cost_usd": 0.5}, "durability": "relaxed",
        "concurrency": {"key": "{{ inputs.n }}", "limit": 2, "strategy": "queue"},
    }
    wf = workflow_save(definition=saved)[0]
    definition = wf.current_version.definition
    ui.goto(f"{ui.base}/workflows/export-e2e/edit/")
    expect(ui.locator(".editor .react-flow__node")).to_have_count(4)
    ui.get_by_role("tab", name="JSON").click()
    with ui.expect_download() as info:
        ui.get_by_role("button", name="Export JSON").click()
    download = info.value
    assert download.suggested_filename == "export-e2e.json"
    exported = json.loads(download.path().read_text())
    # Node by node first, so a difference names the node; then the whole file.
    for mine, theirs in zip(exported["nodes"], definition["nodes"], strict=True):
        assert mine == theirs
    assert exported == definition
    screenshot(ui, "editor-json-panel")


def test_palette_search_filters_node_types_as_you_type_and_enter_adds_the_first_match(ui):
    ui.goto(f"{ui.base}/workflows/new/")
    palette = ui.get_by_role("navigation", name="Node palette")
    items = palette.locator("[data-node-type]")
    expect(items.first).to_be_visible()
    total = items.count()
    search = ui.get_by_role("searchbox", name="Search node types")

    search.fill("HTTP")  # by name or label, any case, first; then the types whose description says it
    expect(items.first).to_have_attribute("data-node-type", "http")
    expect(items).not_to_have_count(total)
    search.fill("operator approves")  # by description, every word
    expect(items).to_have_count(1)
    expect(palette.locator('[data-node-type="approval"]')).to_be_visible()
    search.fill("wait")
    expect(palette.locator('[data-node-type="wait_for_event"]')).to_be_visible()
    expect(palette.locator('[data-node-type="python"]')).to_have_count(0)

    search.fill("no such thing")
    expect(items).to_have_count(0)
    expect(palette.get_by_role("status")).to_have_text("No node type matches “no such thing”.")
    screenshot(ui, "editor-palette-no-match")

    search.fill("no-op")
    expect(items).to_have_count(1)
    search.press("Enter")
    expect(ui.locator('.editor .react-flow__node[data-id="noop_1"]')).to_be_visible()
    expect(search).to_have_value("")
    expect(items).to_have_count(total)


BROKEN_CONFIG = """{
  "name": "Messages E2E", "slug": "messages-e2e",
  "nodes": [
    {"id": "fetch", "type": "http", "config": {"timeout_s": "3", "foo": 1}},
    {"id": "done", "type": "noop"}
  ],
  "edges": [{"source": "fetch", "target": "done"}, {"source": "fetch", "target": "ghost"}]
}"""


def test_validation_messages_read_as_sentences_about_the_field_all_at_once(ui):
    ui.goto(f"{ui.base}/workflows/new/")
    ui.get_by_role("tab", name="JSON").click()
    ui.get_by_label("…or paste a definition").fill(BROKEN_CONFIG)
    ui.get_by_role("button", name="Import", exact=True).click()
    problems = ui.get_by_role("list", name="Problems")
    # Every problem at once: the edge to no node and each config field's, in words, not JSON-Schema text.
    expect(problems).to_contain_text("edge fetch->ghost: target ghost is not a node id")
    expect(problems).to_contain_text("node fetch: url is required")
    expect(problems).to_contain_text("node fetch: foo is not a known field")
    expect(problems).to_contain_text("node fetch: timeout_s must be a number")
    expect(problems).not_to_contain_text("required property")
    expect(problems).not_to_contain_text("config is invalid")
    expect(problems.locator("code").filter(has_text="timeout_s")).to_have_count(1)  # names set as code

    problems.get_by_role("button").filter(has_text="url is required").click()  # selects the node
    panel = ui.locator('[data-panel-node="fetch"]')
    expect(panel.locator('[data-field="url"] .field-error')).to_have_text("url is required")
    expect(panel.locator('[data-field="timeout_s"] .field-error')).to_have_text("timeout_s must be a number")
    expect(ui.locator('[data-errors-for="fetch"]')).not_to_contain_text("node fetch")  # the node says it already
    screenshot(ui, "editor-validation-messages")
