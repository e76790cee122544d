"""A streamed model reply in the Conversation tab, in a real browser, while a real worker runs the step: the
assistant message grows word by word over the run's websocket, then shows the finished reply the journal holds."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from engine.integrations.credentials import credential_create
from engine.services.scheduler import run_start
from engine.services.workflows import workflow_save
from tests.conftest import definition, finished, wait_for
from tests.e2e.conftest import screenshot
from tests.fakes.servers import ChatServer

pytestmark = [pytest.mark.e2e, pytest.mark.workers, pytest.mark.django_db(transaction=True)]

WORDS = [f"word{i}" for i in range(1, 25)]


@pytest.fixture
def worker_env(worker_env) -> dict:
    return {**worker_env, "WEFT_HTTP_ALLOWED_HOSTS": "*,127.0.0.1", "WEFT_STREAM_INTERVAL_S": "0.05"}


def test_a_streamed_reply_grows_in_the_conversation_then_shows_the_journaled_one(ui, workers, settings):
    settings.WEFT_HTTP_ALLOWED_HOSTS = ["*", "127.0.0.1"]  # the definition is saved here, run by the workers
    chat = ChatServer(text_reply=" ".join(WORDS)).start()
    chat.stream_delay_s = 0.25  # six seconds for the reply
    try:
        credential_create(name="llm-key", kind="api_key", secret="sk-stream-test", allowed_hosts=["127.0.0.1"])
        node = {"id": "ask", "type": "llm", "retry": {"max_attempts": 1},
                "config": {"base_url": chat.url + "/v1", "model": "gpt-4o-mini", "credential": "llm-key",
                           "prompt": "Count slowly", "stream": True}}
        run, _ = run_start(workflow=workflow_save(definition=definition("stream-ui", [node], []))[0])
        ui.goto(f"{ui.base}/runs/{run.pk}/steps/ask/")
        drawer = ui.locator('[data-drawer-node="ask"]')
        expect(ui.locator(".runview")).to_have_attribute("data-live", "true")
        workers.start()
        drawer.get_by_role("tab", name="Conversation").click()
        growing = drawer.locator('[data-conversation] [data-role="assistant"] [data-streaming="live"]')
        expect(growing).to_contain_text("word3", timeout=60_000)
        partial = growing.inner_text()
        assert "word24" not in partial, partial  # seen before the model finished
        expect(drawer.locator('[data-role="assistant"] .who')).to_contain_text("writing…")
        screenshot(ui, "conversation-streaming")
        ui.get_by_role("button", name="Toggle dark mode").click()
        screenshot(ui, "conversation-streaming-dark")
        ui.get_by_role("button", name="Toggle dark mode").click()
        expect(growing).to_contain_text("word12")  # it grows
        assert wait_for(finished(run.pk), timeout=60, message="the streamed run").status == "succeeded"
        reply = drawer.locator('[data-conversation] [data-journal-key="completion"]')
        expect(reply).to_contain_text("word24", timeout=30_000)
        expect(reply.locator("[data-streaming]")).to_have_count(0, timeout=30_000)  # the journal's reply now
        expect(reply.locator(".who")).not_to_contain_text("writing")
    finally:
        chat.stop()
