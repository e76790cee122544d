"""The Conversation tab shows each model turn's tokens in and out and its cost, and they add up to the run
header's totals (the run has this one model-calling step). The agent ran in-process against a loopback model
server that reports different usage for each turn."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

import tests.nodes.tasks  # noqa: F401  (registers nodes_tests.page)
from engine.models import StepRun
from engine.services.scheduler import run_start
from engine.services.workflows import workflow_save
from tests.conftest import definition
from tests.e2e.conftest import screenshot
from tests.e2e.test_accessibility import AXE, axe_violations
from tests.fakes.servers import ChatServer

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def usage(body) -> dict:
    """The first turn 10,000 tokens in and 1,000 out; the turn after the tool's result 20,000 in and 3,000 out."""
    later = any(m["role"] == "tool" for m in body["messages"])
    prompt, completion = (20_000, 3_000) if later else (10_000, 1_000)
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def test_each_model_turn_shows_its_tokens_and_cost_and_they_sum_to_the_runs_totals(ui, drain, settings):
    settings.WEFT_HTTP_ALLOWED_HOSTS = ["*", "127.0.0.1"]
    chat = ChatServer(tool_calls_total=1, tool_name="page", tool_args=lambda n: {"i": n, "size": 60},
                      usage=usage).start()
    try:
        node = {"id": "agent", "type": "agent",
                "config": {"base_url": chat.url + "/v1", "model": "gpt-4o-mini", "prompt": "Read the page",
                           "tools": [{"name": "page", "type": "task", "function": "nodes_tests.page"}]}}
        wf = workflow_save(definition=definition("turn-cost", [node], []))[0]
        run = run_start(workflow=wf)[0]
        drain()
        assert StepRun.objects.get(run=run).status == "succeeded"
    finally:
        chat.stop()

    ui.goto(f"{ui.base}/runs/{run.pk}/steps/agent/")
    drawer = ui.locator('[data-drawer-node="agent"]')
    drawer.get_by_role("tab", name="Conversation").click()
    turns = drawer.locator('[data-conversation] [data-role="assistant"]')
    expect(turns).to_have_count(2)
    # gpt-4o-mini: $0.15 a million tokens in, $0.60 out
    first, second = turns.nth(0).locator("[data-turn-usage]"), turns.nth(1).locator("[data-turn-usage]")
    expect(first).to_have_text(re.compile(r"10,000 in \+ 1,000 out\s+tokens · \$0\.0021"))
    expect(second).to_have_text(re.compile(r"20,000 in \+ 3,000 out\s+tokens · \$0\.0048"))
    expect(turns.nth(0)).to_contain_text("asks for page")

    tokens = sum(int(n.replace(",", "")) for t in turns.locator("[data-turn-usage]").all_inner_texts()
                 for n in re.findall(r"([\d,]+) (?:in|out)", t))
    cost = sum(float(c.lstrip("$")) for c in turns.locator("[data-turn-cost]").all_inner_texts())
    head = ui.locator('[data-fact="tokens"] dd')
    expect(head).to_contain_text(f"{tokens:,}")  # 34,000
    expect(head).to_contain_text("in 2 model call(s)")
    expect(ui.locator('[data-fact="cost"] dd')).to_have_text(f"${cost:.4f}")  # $0.0069

    for theme in ("light", "dark"):
        if theme == "dark":
            ui.get_by_role("button", name="Toggle dark mode").click()
            expect(ui.locator("html")).to_have_attribute("data-theme", "dark")
        screenshot(ui, f"conversation-turn-cost-{theme}")
        if AXE.exists():
            assert axe_violations(ui) == [], theme
    ui.get_by_role("button", name="Toggle dark mode").click()
