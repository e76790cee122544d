"""Template completion in the editor: `{{ nodes.fetch.output.` lists the fields of fetch's output in the
workflow's last run, choosing one inserts it, and the field's preview shows its value in that run."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from engine.services.scheduler import run_start
from engine.services.workflows import workflow_save
from tests.conftest import definition, node
from tests.e2e.conftest import screenshot
from tests.e2e.test_accessibility import AXE, axe_violations
from tests.e2e.test_editor import canvas_node

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

FETCH = {"id": "fetch", "type": "transform", "config": {"template": {"items": [{"title": "x"}], "count": 2}}}
USE = {"id": "use", "type": "transform", "config": {"template": "done"}}


def test_completions_list_the_last_runs_output_fields_and_the_preview_shows_their_value(ui, drain):
    wf = workflow_save(definition=definition(
        "complete", [node("start"), FETCH, USE], [("start", "fetch"), ("fetch", "use")],
        inputs={"type": "object", "properties": {"topic": {"type": "string"}}}))[0]
    run, _ = run_start(workflow=wf, inputs={"topic": "tea"})
    drain()

    ui.goto(f"{ui.base}/workflows/complete/edit/")
    canvas_node(ui, "use").click()
    field = ui.locator("#cfg-use-template")
    field.fill("")
    field.press_sequentially("{{ nodes.")
    listbox = ui.get_by_role("listbox", name="Completions for template")
    expect(listbox.get_by_role("option")).to_have_text(
        [re.compile(r"fetch.*"), re.compile(r"start.*")])  # upstream of `use` only
    expect(listbox.get_by_role("option", name="use", exact=True)).to_have_count(0)
    field.press_sequentially("fetch.output.")
    options = listbox.get_by_role("option")
    expect(options).to_have_count(2)
    expect(listbox.locator("[data-completion]")).to_have_text(
        [re.compile(r"count\s*2"), re.compile(r"items\s*list of 1")])
    expect(field).to_have_attribute("aria-activedescendant", "cfg-use-template-completion-0")
    field.press("ArrowDown")
    expect(field).to_have_attribute("aria-activedescendant", "cfg-use-template-completion-1")
    expect(options.nth(1)).to_have_attribute("aria-selected", "true")
    field.press("Enter")  # chooses `items`
    expect(field).to_have_value("{{ nodes.fetch.output.items")
    expect(listbox).to_have_count(0)
    field.press_sequentially(".0.")
    expect(listbox.get_by_role("option")).to_have_text([re.compile(r"title.*")])
    field.press("Tab")
    field.press_sequentially(" }}")
    expect(field).to_have_value("{{ nodes.fetch.output.items.0.title }}")
    preview = ui.locator('[data-template-preview="template"]')
    expect(preview).to_contain_text(f"Value in the last run, run {str(run.pk)[-8:]} (succeeded)")
    expect(preview.locator("[data-preview-value]")).to_have_text("x")

    # the run inputs' fields, and a reference the last run has no value for
    field.fill("")
    field.press_sequentially("About {{ inputs.")
    expect(ui.get_by_role("listbox", name="Completions for template").get_by_role("option")).to_have_text(
        [re.compile(r"topic\s*\"tea\"")])
    field.press("Enter")
    field.press_sequentially(" }}: {{ nodes.fetch.output.count }}")
    expect(preview.locator("[data-preview-value]")).to_have_text("About tea: 2")
    field.fill("{{ nodes.fetch.output.titles }}")
    expect(preview).to_contain_text("nodes.fetch.output has no field titles in that run (its fields: count, items)")

    field.fill("")
    field.press_sequentially("{{ nodes.fetch.output.")
    expect(ui.get_by_role("listbox", name="Completions for template")).to_be_visible()
    for theme in ("light", "dark"):
        if theme == "dark":
            ui.get_by_role("button", name="Toggle dark mode").click()
            expect(ui.locator("html")).to_have_attribute("data-theme", "dark")
        field.fill("{{ nodes.fetch.output.items.0.title }}, {{ nodes.fetch.output.count }}")
        for _ in " }}count":
            field.press("ArrowLeft")  # the caret after `output.`: the completions open again
        expect(ui.get_by_role("listbox", name="Completions for template")).to_be_visible()
        expect(preview.locator("[data-preview-value]")).to_have_text("x, 2")
        screenshot(ui, f"editor-template-completion-{theme}")
        if AXE.exists():
            assert axe_violations(ui) == [], theme
    ui.get_by_role("button", name="Toggle dark mode").click()


def test_the_preview_says_no_run_yet_before_the_workflow_ran(ui):
    workflow_save(definition=definition("unrun", [node("start"), FETCH, USE], [("start", "fetch"), ("fetch", "use")]))
    ui.goto(f"{ui.base}/workflows/unrun/edit/")
    canvas_node(ui, "use").click()
    ui.locator("#cfg-use-template").fill("{{ nodes.fetch.output.count }}")
    expect(ui.locator('[data-template-preview="template"]')).to_contain_text("no run yet")
