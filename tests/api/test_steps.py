"""Steps over HTTP: detail with attempts and journal, and the operator actions."""

from __future__ import annotations

import uuid

import pytest

from engine.models import Attempt, Event, JournalEntry, StepRun
from engine.services.scheduler import run_start
from engine.services.workflows import workflow_save
from tests.api.test_workflows import assert_error
from tests.conftest import definition, node

pytestmark = pytest.mark.django_db


def step_status(run, node_id: str) -> str:
    return StepRun.objects.get(run=run, node_id=node_id).status


@pytest.fixture
def operator(api):
    return api("operator")


def test_step_detail_has_every_attempt_with_logs_traceback_metrics_and_the_journal(api, drain):
    d = definition("chat", [node("talk", "tests.api_chatty", retry={"max_attempts": 2, "backoff_s": 0})], [])
    wf, _, _ = workflow_save(definition=d)
    run, _ = run_start(workflow=wf, inputs={})
    drain()
    r = api("viewer").get(f"/api/runs/{run.pk}/steps/talk/")
    assert r.status_code == 200, r.content
    body = r.json()
    assert body["status"] == "succeeded" and body["output"] == {"value": 42}
    assert body["attempts_count"] == 2 and body["run"] == str(run.pk)
    first, second = body["attempts"]
    assert (first["number"], first["outcome"], second["outcome"]) == (1, "failed", "succeeded")
    assert first["error"] == "ValueError: first try fails" and first["error_type"] == "ValueError"
    assert "Traceback" in first["traceback"] and "first try fails" in first["traceback"]
    messages = [line["msg"] for line in first["logs"]]
    assert "hello from talk" in messages and "careful now" in messages
    assert first["worker"] and first["started_at"] and first["finished_at"]
    assert second["metrics"] == {"tokens": 7}
    assert [(j["key"], j["status"], j["result"], j["attempt"], j["cost_usd"]) for j in body["journal"]] == [
        ("lookup", "succeeded", 42, 1, None)  # not a model call: no cost
    ]


def test_unknown_step_is_404(api, mixed_run):
    assert_error(api("viewer").get(f"/api/runs/{mixed_run.pk}/steps/ghost/"), 404, "not_found")
    assert_error(api("operator").post(f"/api/runs/{mixed_run.pk}/steps/ghost/retry/"), 404, "not_found")
    assert_error(api("viewer").get(f"/api/runs/{uuid.uuid4()}/steps/bad/"), 404, "not_found")


def test_retry_of_a_failed_step_queues_a_new_attempt(operator, mixed_run, drain):
    r = operator.post(f"/api/runs/{mixed_run.pk}/steps/bad/retry/")
    assert r.status_code == 200, r.content
    assert r.json()["status"] == "queued" and r.json()["attempt"] == 2
    assert Event.objects.filter(run=mixed_run, type="step.retry_requested", actor="u-operator").exists()
    drain()
    assert Attempt.objects.filter(step__run=mixed_run, step__node_id="bad").count() == 2


def test_retry_of_a_step_that_did_not_fail_is_409_saying_its_state(operator, mixed_run):
    err = assert_error(operator.post(f"/api/runs/{mixed_run.pk}/steps/ask/retry/"), 409, "invalid_state")
    assert "waiting" in err["message"]
    assert step_status(mixed_run, "ask") == "waiting"


def test_rerun_preview_and_rerun_from_run_the_step_and_its_descendants_again(api, drain):
    d = definition("re", [node("a"), node("b"), node("c"), node("side")], [("a", "b"), ("b", "c")])
    wf, _, _ = workflow_save(definition=d)
    run, _ = run_start(workflow=wf, inputs={})
    drain()
    preview = api("viewer").get(f"/api/runs/{run.pk}/steps/b/rerun-preview/")
    assert preview.status_code == 200 and preview.json() == {"node_ids": ["b", "c"]}
    r = api("operator").post(f"/api/runs/{run.pk}/steps/b/rerun-from/")
    assert r.status_code == 200, r.content
    assert r.json()["rerun"] == ["b", "c"] and r.json()["step"]["status"] == "queued"
    assert step_status(run, "c") == "pending" and step_status(run, "side") == "succeeded"
    drain()
    assert Attempt.objects.filter(step__run=run, step__node_id="c").count() == 2
    assert Attempt.objects.filter(step__run=run, step__node_id="a").count() == 1


def test_rerun_from_a_step_still_active_is_409(operator, mixed_run):
    err = assert_error(operator.post(f"/api/runs/{mixed_run.pk}/steps/ask/rerun-from/"), 409, "invalid_state")
    assert "waiting" in err["message"]


def test_skip_marks_the_step_skipped(operator, mixed_run):
    r = operator.post(f"/api/runs/{mixed_run.pk}/steps/bad/skip/")
    assert r.status_code == 200 and r.json()["status"] == "skipped"
    assert_error(operator.post(f"/api/runs/{mixed_run.pk}/steps/bad/skip/"), 409, "invalid_state")


def test_complete_sets_the_given_output_and_moves_the_run_on(operator, mixed_run, drain):
    r = operator.post(f"/api/runs/{mixed_run.pk}/steps/ask/complete/", {"output": {"answer": 7}}, format="json")
    assert r.status_code == 200, r.content
    assert r.json()["status"] == "succeeded" and r.json()["output"] == {"answer": 7}
    assert step_status(mixed_run, "after") == "queued"


def test_approve_succeeds_the_waiting_step_with_the_comment(operator, mixed_run):
    r = operator.post(f"/api/runs/{mixed_run.pk}/steps/ask/approve/", {"comment": "fine"}, format="json")
    assert r.status_code == 200, r.content
    assert r.json()["output"] == {"approved": True, "comment": "fine", "by": "u-operator"}
    assert step_status(mixed_run, "after") == "queued"
    err = assert_error(operator.post(f"/api/runs/{mixed_run.pk}/steps/ask/approve/"), 409, "invalid_state")
    assert "succeeded" in err["message"]


def test_reject_fails_the_waiting_step_with_the_comment(operator, mixed_run):
    r = operator.post(f"/api/runs/{mixed_run.pk}/steps/ask/reject/", {"comment": "no way"}, format="json")
    assert r.status_code == 200 and r.json()["status"] == "failed"
    assert "no way" in r.json()["error"]
    assert step_status(mixed_run, "after") == "upstream_failed"


def test_approve_of_a_step_not_waiting_for_approval_is_409_and_changes_nothing(operator, mixed_run):
    err = assert_error(operator.post(f"/api/runs/{mixed_run.pk}/steps/bad/approve/"), 409, "invalid_state")
    assert "failed" in err["message"]
    assert step_status(mixed_run, "bad") == "failed"


def test_comment_must_be_a_string_of_bounded_length(operator, mixed_run):
    r = operator.post(f"/api/runs/{mixed_run.pk}/steps/ask/approve/", {"comment": "x" * 2001}, format="json")
    assert_error(r, 400, "invalid")
    assert step_status(mixed_run, "ask") == "waiting"


def test_actions_on_a_cancelled_run_are_409(operator, mixed_run):
    operator.post(f"/api/runs/{mixed_run.pk}/cancel/")
    err = assert_error(operator.post(f"/api/runs/{mixed_run.pk}/steps/bad/retry/"), 409, "invalid_state")
    assert "cancelled" in err["message"]
    assert not JournalEntry.objects.exists()


def test_a_journaled_model_turn_has_its_cost_priced_from_the_price_table(settings):
    from types import SimpleNamespace

    from api.serializers import JournalEntrySerializer

    settings.WEFT_LLM_PRICES = {"house-model": {"input": 2.0, "output": 10.0}}
    turn = SimpleNamespace(status="succeeded", result={"model": "house-model-7", "message": {},
                                                       "usage": {"prompt_tokens": 1000, "completion_tokens": 200}})
    cost = JournalEntrySerializer().get_cost_usd
    assert cost(turn) == pytest.approx(0.004)  # 1,000 x $2 + 200 x $10 a million tokens
    assert cost(SimpleNamespace(status="started", result=None)) is None  # in flight or in doubt: no usage yet
    unpriced = SimpleNamespace(status="succeeded", result={"model": "unpriced", "usage": {"prompt_tokens": 9}})
    assert cost(unpriced) is None
