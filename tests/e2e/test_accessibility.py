"""Every page scanned by axe-core (the pinned npm package, its axe.min.js injected into the page) in light
and dark mode: no serious or critical violation. Screenshots of each page in both modes go to test-output/."""

from __future__ import annotations

import json

import pytest
from playwright.sync_api import expect

from engine.integrations.credentials import credential_create
from engine.services.scheduler import run_start
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


@pytest.mark.skipif(not AXE.exists(), reason="axe-core is not installed (npm ci in webui/frontend)")
def test_every_page_has_no_serious_or_critical_axe_violation_in_light_and_dark_mode(ui, drain):
    d = definition("a11y", [node("a"), node("b", "tests.raise", retry={"max_attempts": 1}), node("c")],
                   [("a", "b"), ("b", "c")], inputs={"type": "object", "properties": {"topic": {"type": "string"}}})
    wf = workflow_save(definition=d)[0]
    run, _ = run_start(workflow=wf, inputs={"topic": "x"})
    credential_create(name="a11y-key", secret="x", allowed_hosts=["api.example.com"])
    drain()
    pages = {
        "home": "/",
        "workflows": "/workflows/",
        "workflow-analytics": "/workflows/a11y/",
        "workflow-grid": "/workflows/a11y/grid/",
        "editor": "/workflows/a11y/edit/",
        "editor-new": "/workflows/new/",
        "runs": "/runs/",
        "run": f"/runs/{run.pk}/",
        "run-step": f"/runs/{run.pk}/steps/b/",
        "run-timeline": f"/runs/{run.pk}/?tab=timeline",
        "queues": "/queues/",
        "credentials": "/credentials/",
    }
    found = {}
    for theme in ("light", "dark"):
        for name, path in pages.items():
            ui.goto(ui.base + path)
            set_theme(ui, theme)
            if name in ("run", "run-step", "run-timeline"):
                expect(ui.locator(".runview")).to_have_attribute("data-live", "true")
            if name == "credentials":
                expect(ui.locator('tr[data-credential="a11y-key"]')).to_be_visible()
            if name.startswith("editor"):
                expect(ui.locator(".editor")).to_be_visible()
            ui.wait_for_load_state("networkidle")
            screenshot(ui, f"a11y-{name}-{theme}")
            violations = axe_violations(ui)
            if violations:
                found[f"{name} ({theme})"] = violations
    assert not found, json.dumps(found, indent=1)
