"""Approval before an agent's tool call: the step waits without a worker, and the API's approve / edit-and-approve /
reject decide the call; a decided call is never asked about again."""

from __future__ import annotations

import json

import pytest

from engine.models import Event, JournalEntry, StepRun
from engine.services.scheduler import run_start
from engine.services.workflows import workflow_save
from tests.api.conftest import client_for
from tests.conftest import definition
from tests.fakes.servers import ChatServer

pytestmark = pytest.mark.django_db

FAST_RETRY = {"max_attempts": 3, "backoff_s": 0, "jitter": 0}
AMOUNTS = [40, 500]  # the model's first refund is small, its second needs approval


@pytest.fixture
def chat():
    server = ChatServer(tool_calls_total=2, tool_name="refund",
                        tool_args=lambda n: {"i": n, "amount": AMOUNTS[n]}).start()
    yield server
    server.stop()


def start(chat, tool_server, requires_approval="{{ arguments.amount > 100 }}"):
    tool = {"name": "refund", "type": "http", "url": tool_server.url + "/effect", "description": "refund an order",
            "requires_approval": requires_approval}
    node = {"id": "agent", "type": "agent", "retry": FAST_RETRY,
            "config": {"base_url": chat.url + "/v1", "model": "gpt-4o-mini", "prompt": "Refund", "tools": [tool]}}
    wf = workflow_save(definition=definition("refunds", [node], []))[0]
    return run_start(workflow=wf)[0]


def url(run, action):
    return f"/api/runs/{run.pk}/steps/agent/{action}/"


def test_a_call_needing_approval_waits_and_edit_and_approve_calls_it_with_the_edited_arguments(
        allow_loopback, chat, tool_server, drain):
    run = start(chat, tool_server)
    drain()
    step = StepRun.objects.get(run=run)
    assert (step.status, step.waiting_reason) == ("waiting", "tool_approval")
    assert step.waiting_detail["tool_call"] == {"id": "call_1", "name": "refund", "arguments": {"i": 1, "amount": 500}}
    assert [r["body"] for r in tool_server.requests] == [{"i": 0, "amount": 40}]  # the small one went through

    response = client_for("operator").post(url(run, "approve"), {"tool_call": "call_1", "comment": "capped",
                                                                 "arguments": {"i": 1, "amount": 100}}, format="json")
    assert response.status_code == 200, response.content
    drain()
    step.refresh_from_db()
    assert step.status == "succeeded", step.error
    assert [r["body"] for r in tool_server.requests] == [{"i": 0, "amount": 40}, {"i": 1, "amount": 100}]
    decision = JournalEntry.objects.get(step=step, key="approval-2-refund").result
    assert decision["decision"] == "approved" and decision["by"] == "u-operator" and decision["edited"] is True
    keys = list(JournalEntry.objects.filter(step=step).values_list("key", flat=True))
    assert keys == ["turn-1", "tool-1-refund", "turn-2", "approval-2-refund", "tool-2-refund", "turn-3"]

    again = client_for("operator").post(url(run, "approve"), {"tool_call": "call_1"}, format="json")
    assert again.status_code == 409
    assert "tool call 'call_1' of step 'agent' is not waiting for approval" in again.json()["error"]["message"]


def test_reject_sends_the_comment_to_the_model_as_the_tool_result(allow_loopback, chat, tool_server, drain):
    run = start(chat, tool_server)
    drain()
    response = client_for("operator").post(url(run, "reject"), {"tool_call": "call_1", "comment": "too much"},
                                           format="json")
    assert response.status_code == 200, response.content
    drain()
    step = StepRun.objects.get(run=run)
    assert step.status == "succeeded", step.error
    assert len(tool_server.requests) == 1  # the rejected call was never made
    tool_messages = [m for m in chat.completions()[-1]["body"]["messages"] if m["role"] == "tool"]
    rejected = json.loads(tool_messages[1]["content"])
    assert rejected["rejected"] is True and "u-operator" in rejected["message"] and "too much" in rejected["message"]


def test_a_decided_call_is_not_asked_about_again_after_a_failed_attempt(allow_loopback, chat, tool_server, drain):
    run = start(chat, tool_server, requires_approval=True)
    drain()
    client = client_for("operator")
    assert client.post(url(run, "approve"), {"tool_call": "call_0"}, format="json").status_code == 200
    drain()  # waits again, for the second call
    step = StepRun.objects.get(run=run)
    assert step.waiting_detail["tool_call"]["id"] == "call_1"
    chat.fail_next = [(500, {})]  # the model call after the approved tool call fails: a new attempt replays
    assert client.post(url(run, "approve"), {"tool_call": "call_1"}, format="json").status_code == 200
    drain()
    step.refresh_from_db()
    assert step.status == "succeeded", step.error
    waits = Event.objects.filter(run=run, type="step.waiting").count()
    assert waits == 2  # one per call, none after the failed attempt
    assert Event.objects.filter(run=run, type="step.tool_decision").count() == 2
    assert [r["body"]["i"] for r in tool_server.requests] == [0, 1]


def test_decisions_on_a_call_that_is_not_waiting_are_refused(allow_loopback, chat, tool_server, drain):
    run = start(chat, tool_server)
    drain()
    client = client_for("operator")
    wrong = client.post(url(run, "approve"), {"tool_call": "call_9"}, format="json")
    assert wrong.status_code == 409
    assert "it waits on tool call 'call_1'" in wrong.json()["error"]["message"]
    bad = client.post(url(run, "reject"), {"tool_call": "call_1", "arguments": {"amount": 1}}, format="json")
    assert bad.status_code == 400
    not_an_object = client.post(url(run, "approve"), {"tool_call": "call_1", "arguments": [1]}, format="json")
    assert not_an_object.status_code == 400
    plain = client.post(url(run, "approve"), {}, format="json")  # the approval-node action: not this wait
    assert plain.status_code == 409
    step = StepRun.objects.get(run=run)
    assert (step.status, step.waiting_reason) == ("waiting", "tool_approval")
    assert not JournalEntry.objects.filter(step=step, key__startswith="approval-").exists()
