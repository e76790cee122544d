"""The Conversation tab of an agent whose conversation was trimmed to its context window: the trimmed tool result
marked, the summary shown. The agent ran in-process against a loopback model server."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

import tests.nodes.tasks  # noqa: F401  (registers nodes_tests.page)
from engine.models import StepRun
from engine.services.scheduler import run_start
from engine.services.workflows import workflow_save
from tests.conftest import definition
from tests.e2e.conftest import screenshot
from tests.fakes.servers import ChatServer

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_the_conversation_marks_trimmed_tool_results_and_shows_the_summary(ui, drain, settings):
    settings.WEFT_HTTP_ALLOWED_HOSTS = ["*", "127.0.0.1"]
    chat = ChatServer(tool_calls_total=4, tool_name="page", text_reply="Pages 0 and 1 were read.",
                      usage=lambda body: {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}).start()
    runs = {}
    try:
        for strategy in ("drop_oldest_tool_results", "summarize"):
            node = {"id": "agent", "type": "agent",
                    "config": {"base_url": chat.url + "/v1", "model": "gpt-4o-mini", "prompt": "Read the pages",
                               "tools": [{"name": "page", "type": "task", "function": "nodes_tests.page"}],
                               "context": {"max_tokens": 1500, "strategy": strategy, "keep_last": 2}}}
            wf = workflow_save(definition=definition(f"ctx-{strategy[:4]}", [node], []))[0]
            runs[strategy] = run_start(workflow=wf)[0]
            drain()
            assert StepRun.objects.get(run=runs[strategy]).status == "succeeded"
    finally:
        chat.stop()

    ui.goto(f"{ui.base}/runs/{runs['drop_oldest_tool_results'].pk}/steps/agent/")
    drawer = ui.locator('[data-drawer-node="agent"]')
    drawer.get_by_role("tab", name="Conversation").click()
    conversation = drawer.locator("[data-conversation]")
    expect(conversation.locator('[data-journal-key="tool-1-page"] [data-trimmed]')).to_contain_text("context-4")
    expect(conversation.locator('[data-journal-key="tool-2-page"] [data-trimmed]')).to_contain_text("context-5")
    expect(conversation.locator('[data-journal-key="tool-3-page"] [data-trimmed]')).to_have_count(0)
    expect(conversation.locator('[data-journal-key="context-4"]')).to_contain_text("1 tool result(s) trimmed")
    expect(conversation.locator('[data-journal-key="context-1"]')).to_have_count(0)  # nothing trimmed: not shown
    screenshot(ui, "conversation-context-trimmed")

    ui.goto(f"{ui.base}/runs/{runs['summarize'].pk}/steps/agent/")
    drawer.get_by_role("tab", name="Conversation").click()
    summary = drawer.locator('[data-conversation] [data-journal-key="context-4"]')
    expect(summary).to_contain_text("4 earlier messages replaced by this summary")
    expect(summary).to_contain_text("Pages 0 and 1 were read.")
    screenshot(ui, "conversation-context-summary")
