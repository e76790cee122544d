"""The editor's Test step (run the selected node with sample inputs, see its output or error) and its version
compare field by field; screenshots in light and dark mode and an axe-core scan with each panel open."""

from __future__ import annotations

import json

import pytest
from playwright.sync_api import expect

from engine.models import Attempt, JournalEntry, Run, StepRun
from engine.services.scheduler import run_start
from engine.services.workflows import workflow_save
from tests.conftest import definition, node
from tests.e2e.conftest import screenshot
from tests.e2e.test_accessibility import AXE, axe_violations

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

INPUTS = {"type": "object", "properties": {"x": {"type": "integer", "default": 4}}}


def canvas_node(page, node_id):
    return page.locator(f'.react-flow__node[data-id="{node_id}"]')


def both_themes(page, name: str) -> None:
    """Screenshots in light and dark mode (toggled in place, so the open panels stay open), each scanned by axe."""
    found = {}
    for theme in ("light", "dark"):
        if page.locator("html").get_attribute("data-theme") != theme:
            page.get_by_role("button", name="Toggle dark mode").click()
        expect(page.locator("html")).to_have_attribute("data-theme", theme)
        screenshot(page, f"{name}-{theme}")
        if AXE.exists():
            violations = axe_violations(page)
            if violations:
                found[theme] = violations
    assert not found, json.dumps(found, indent=1)


def test_test_step_runs_the_selected_node_with_edited_sample_inputs_and_shows_its_output(ui, drain):
    wf = workflow_save(definition=definition("step-e2e", [
        node("up", "tests.add", kwargs={"a": 1, "b": 2}),
        node("t", "tests.add", kwargs={"a": "{{ inputs.x }}", "b": "{{ nodes.up.output.sum }}"}),
    ], [("up", "t")], inputs=INPUTS))[0]
    ui.goto(f"{ui.base}/workflows/step-e2e/edit/")
    canvas_node(ui, "t").click()
    sample = ui.get_by_label("Sample inputs (JSON)")
    # No run yet: the sample starts from the input schema's default and names the node upstream.
    expect(sample).to_have_value(json.dumps({"inputs": {"x": 4}, "nodes": {"up": {"output": None}}}, indent=2))

    sample.fill(json.dumps({"inputs": {"x": 40}, "nodes": {"up": {"output": {"sum": 2}}}}))
    ui.get_by_role("button", name="Test step").click()
    outcome = ui.locator('[data-test-outcome="succeeded"]')
    expect(outcome).to_contain_text("Succeeded")
    expect(ui.get_by_label("Output", exact=True)).to_contain_text('"sum": 42')
    ui.locator(".side").evaluate("el => el.scrollTop = el.scrollHeight")
    both_themes(ui, "editor-test-step-output")

    # Its error reads as the node raised it; a sample that is not JSON cannot be sent.
    sample.fill(json.dumps({"inputs": {"x": "forty"}, "nodes": {"up": {"output": {"sum": 2}}}}))
    ui.get_by_role("button", name="Test step").click()
    expect(ui.locator('[data-test-outcome="failed"]')).to_contain_text("Failed")
    expect(ui.get_by_label("Error", exact=True)).to_contain_text("'a'")
    ui.locator(".side").evaluate("el => el.scrollTop = el.scrollHeight")
    both_themes(ui, "editor-test-step-error")
    sample.fill("{ not json")
    expect(ui.get_by_role("button", name="Test step")).to_be_disabled()
    assert not Run.objects.exists() and not StepRun.objects.exists()
    assert not Attempt.objects.exists() and not JournalEntry.objects.exists()

    # After a run, the sample is that run's inputs and the outputs upstream.
    run, _ = run_start(workflow=wf, inputs={"x": 10})
    drain()
    ui.reload()
    canvas_node(ui, "t").click()
    expect(ui.locator("#node-test-source")).to_contain_text("the last run")
    expect(ui.get_by_label("Sample inputs (JSON)")).to_have_value(json.dumps(
        {"inputs": {"x": 10}, "nodes": {"up": {"output": {"sum": 3}, "status": "succeeded"}}}, indent=2))
    ui.get_by_role("button", name="Test step").click()
    expect(ui.get_by_label("Output", exact=True)).to_contain_text('"sum": 13')


def test_an_approval_node_says_it_cannot_be_tested_alone(ui):
    workflow_save(definition=definition("ask-e2e", [{"id": "ask", "type": "approval", "config": {}}], []))
    ui.goto(f"{ui.base}/workflows/ask-e2e/edit/")
    canvas_node(ui, "ask").click()
    expect(ui.get_by_role("button", name="Test step")).to_be_disabled()
    expect(ui.locator("[data-test-blocked]")).to_contain_text(
        "cannot be tested on its own: an approval waits inside a run for a person to decide; start a run to try it")


def test_version_compare_shows_each_changed_field_with_its_old_and_new_value(ui):
    fetch = {"id": "fetch", "type": "http", "config": {"url": "https://api.example.com/v1",
                                                        "headers": {"Authorization": "Bearer old"}}}
    workflow_save(definition=definition("cmp-e2e", [fetch, node("after")], [("fetch", "after")], inputs=INPUTS))
    ui.goto(f"{ui.base}/workflows/cmp-e2e/edit/")
    canvas_node(ui, "fetch").click()
    ui.locator("#cfg-fetch-url").fill("https://api.example.com/v2")
    ui.locator("#cfg-fetch-headers").fill(json.dumps({"Authorization": "Bearer new"}))
    ui.get_by_text("Queue, retries, timeout, trigger rule").click()
    ui.locator("#node-queue").fill("slow")
    ui.get_by_role("tab", name="Workflow").click()
    ui.get_by_label("Input schema (JSON Schema)").fill(json.dumps(
        {"type": "object", "properties": {"x": {"type": "integer", "default": 5}}}))
    expect(ui.locator(".editor")).to_have_attribute("data-dirty", "true")

    ui.get_by_role("tab", name="Versions").click()
    ui.locator('[data-version="1"]').get_by_role("button", name="Compare with the editor").click()
    changes = ui.get_by_label("Changes since v1")
    expect(changes).to_contain_text("Changed: fetch")
    url = changes.locator('[data-changed-node="fetch"] [data-changed-field="config.url"]')
    expect(url).to_contain_text("config.url: https://api.example.com/v1 → https://api.example.com/v2")
    expect(url.locator("del")).to_have_text("https://api.example.com/v1")
    expect(url.locator("ins")).to_have_text("https://api.example.com/v2")
    expect(changes.locator('[data-changed-field="config.headers.Authorization"]')).to_contain_text(
        "Bearer old → Bearer new")
    queue = changes.locator('[data-changed-node="fetch"] [data-changed-field="queue"]')
    expect(queue).to_contain_text("queue: not set → slow")
    expect(changes.locator('[data-changed-workflow] [data-changed-field="inputs.properties.x.default"]')
           ).to_contain_text("4 → 5")
    expect(changes.locator("[data-changed-node]")).to_have_count(1)  # "after" did not change
    both_themes(ui, "editor-version-compare")
