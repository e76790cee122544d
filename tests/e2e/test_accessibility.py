"""Every page scanned by axe-core (the pinned npm package, its axe.min.js injected into the page) in light
and dark mode: no serious or critical violation. Screenshots of each page in both modes go to test-output/."""

from __future__ import annotations

import json
import re

import pytest
from playwright.sync_api import expect

from engine.integrations.credentials import credential_create
from engine.services.events import event_trigger_create
from engine.services.limits import limit_create
from engine.services.scheduler import run_start
from engine.services.schedules import schedule_create
from engine.services.webhooks import webhook_create
from engine.services.workflows import workflow_save
from tests.conftest import REPO, definition, node
from tests.e2e.conftest import screenshot

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

AXE = REPO / "webui" / "frontend" / "node_modules" / "axe-core" / "axe.min.js"


def axe_violations(page) -> list[dict]:
    page.add_script_tag(path=str(AXE))
    result = page.evaluate("""async () => {
        const r = await axe.run(document, {resultTypes: ["violations"]});
        return r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
                                       nodes: v.nodes.slice(0, 5).map(n => n.target.join(" "))}));
    }""")
    return [v for v in result if v["impact"] in ("serious", "critical")]


def set_theme(page, theme: str) -> None:
    page.evaluate("t => { localStorage.setItem('weft-theme', t); }", theme)
    page.reload()
    expect(page.locator("html")).to_have_attribute("data-theme", theme)


def _waits_for(selector: str):
    return lambda page: expect(page.locator(selector).first).to_be_visible()


def _live_run_view(page) -> None:
    expect(page.locator(".runview")).to_have_attribute("data-live", "true")


def _step_inputs(page) -> None:
    """The step drawer's inputs (its Overview tab): the rendered config, upstream outputs and run inputs."""
    _live_run_view(page)
    inputs = page.locator('[data-inputs="b"]')
    expect(inputs).to_contain_text("Upstream outputs")
    inputs.scroll_into_view_if_needed()


def _step_tab(name: str):
    def open_tab(page) -> None:
        _live_run_view(page)
        page.get_by_role("tab", name=re.compile(f"^{name}")).click()
        expect(page.get_by_role("tab", name=re.compile(f"^{name}"))).to_have_attribute("aria-selected", "true")

    return open_tab


def _retry_dialog(page) -> None:
    _live_run_view(page)
    page.locator(".drawer").get_by_role("button", name="Retry", exact=True).first.click()
    expect(page.get_by_role("dialog")).to_contain_text("These steps will run")


def _scan_in_both_themes(page, pages: dict, found: dict) -> None:
    for theme in ("light", "dark"):
        for name, (path, prepare) in pages.items():
            page.goto(page.base + path)
            set_theme(page, theme)
            if prepare:
                prepare(page)
            page.wait_for_load_state("networkidle")
            screenshot(page, f"a11y-{name}-{theme}")
            violations = axe_violations(page)
            if violations:
                found[f"{name} ({theme})"] = violations


@pytest.mark.skipif(not AXE.exists(), reason="axe-core is not installed (npm ci in webui/frontend)")
def test_every_page_has_no_serious_or_critical_axe_violation_in_light_and_dark_mode(ui, drain):
    d = definition("a11y", [node("a"), node("b", "tests.raise", retry={"max_attempts": 1}), node("c")],
                   [("a", "b"), ("b", "c")], inputs={"type": "object", "properties": {"topic": {"type": "string"}}})
    wf = workflow_save(definition=d)[0]
    run, _ = run_start(workflow=wf, inputs={"topic": "x"})
    credential_create(name="a11y-key", secret="x", allowed_hosts=["api.example.com"])
    drain()
    editor = _waits_for(".editor")
    pages = {
        "home": ("/", None),
        "workflows": ("/workflows/", None),
        "workflow-analytics": ("/workflows/a11y/", None),
        "workflow-grid": ("/workflows/a11y/grid/", None),
        "editor": ("/workflows/a11y/edit/", editor),
        "editor-new": ("/workflows/new/", editor),
        "runs": ("/runs/", None),
        "run": (f"/runs/{run.pk}/", _live_run_view),
        "run-step": (f"/runs/{run.pk}/steps/b/", _live_run_view),
        "run-timeline": (f"/runs/{run.pk}/?tab=timeline", _live_run_view),
        "queues": ("/queues/", None),
        "credentials": ("/credentials/", _waits_for('tr[data-credential="a11y-key"]')),
    }
    found = {}
    _scan_in_both_themes(ui, pages, found)
    assert not found, json.dumps(found, indent=1)


@pytest.mark.skipif(not AXE.exists(), reason="axe-core is not installed (npm ci in webui/frontend)")
def test_login_limits_triggers_step_tabs_dialogs_and_not_found_pages_have_no_serious_axe_violation(
        ui, drain, browser, live_url, console_errors):
    console_errors.allow("status of 404 (Not Found)")  # the not-found page, on purpose
    d = definition("a11y", [node("a"), node("b", "tests.raise", retry={"max_attempts": 1}), node("c")],
                   [("a", "b"), ("b", "c")], inputs={"type": "object", "properties": {"topic": {"type": "string"}}})
    wf = workflow_save(definition=d)[0]
    run, _ = run_start(workflow=wf, inputs={"topic": "x"})
    limit_create(name="a11y-llm", concurrency=2, rate={"limit": 60, "period_s": 60, "burst": 5})
    webhook_create(workflow="a11y", description="help desk")
    event_trigger_create(workflow="a11y", name="ticket.opened", filter="payload.priority > 2")
    schedule_create(workflow="a11y", interval_s=3600)
    drain()
    pages = {
        "limits": ("/limits/", _waits_for('tr[data-limit="a11y-llm"]')),
        "triggers": ("/workflows/a11y/triggers/", _waits_for("main")),
        "run-step-inputs": (f"/runs/{run.pk}/steps/b/", _step_inputs),
        "run-step-attempts": (f"/runs/{run.pk}/steps/b/", _step_tab("Attempts")),
        "run-step-logs": (f"/runs/{run.pk}/steps/b/", _step_tab("Logs")),
        "run-step-journal": (f"/runs/{run.pk}/steps/b/", _step_tab("Journal")),
        "run-retry-dialog": (f"/runs/{run.pk}/steps/b/", _retry_dialog),
        "runs-filtered": ("/runs/?status=failed", _waits_for(f'[data-run-id="{run.pk}"], a[href*="{run.pk}"]')),
        "not-found": ("/workflows/no-such-workflow/", _waits_for("text=Nothing is at")),
    }
    found = {}
    _scan_in_both_themes(ui, pages, found)
    # Logged out: the login page.
    context = browser.new_context(viewport={"width": 1600, "height": 1000})
    try:
        page = context.new_page()
        page.base = live_url
        _scan_in_both_themes(page, {"login": ("/accounts/login/", _waits_for("input[name=username]"))}, found)
    finally:
        context.close()
    assert not found, json.dumps(found, indent=1)
