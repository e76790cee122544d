"""Retry and rerun over HTTP with {"version": "run" | "current"}, and the version comparison the dialogs show."""

from __future__ import annotations

import pytest

from engine.models import Run, StepRun
from engine.services.scheduler import run_start
from engine.services.workflows import workflow_save
from tests.api.test_workflows import assert_error
from tests.conftest import definition, node

pytestmark = pytest.mark.django_db


def make(b):
    return definition("api-fix", [node("a"), b], [("a", "b")])


@pytest.fixture
def failed_run(drain):
    wf = workflow_save(definition=make(node("b", "tests.raise", retry={"max_attempts": 1})))[0]
    run, _ = run_start(workflow=wf)
    drain()
    return run


def test_version_compare_then_retry_on_the_current_version(api, failed_run, drain):
    workflow_save(definition=make(node("b", "tests.noop", retry={"max_attempts": 1})))
    r = api("viewer").get(f"/api/runs/{failed_run.pk}/version-compare/")
    assert r.status_code == 200, r.content
    body = r.json()
    assert (body["run_version"], body["current_version"], body["movable"], body["problems"]) == (1, 2, True, [])
    assert [c["node_id"] for c in body["changes"]] == ["b"]
    assert {"field": "config.function", "before": "tests.raise", "after": "tests.noop"} in body["changes"][0]["fields"]
    r = api("operator").post(f"/api/runs/{failed_run.pk}/steps/b/retry/", {"version": "current"}, format="json")
    assert r.status_code == 200, r.content
    drain()
    run = Run.objects.get(pk=failed_run.pk)
    assert (run.status, run.version.number) == ("succeeded", 2)


def test_a_version_the_run_cannot_move_to_is_409_with_the_reason_and_a_bad_choice_400(api, failed_run):
    workflow_save(definition=definition("api-fix", [node("a"), node("z")], [("a", "z")]))
    operator = api("operator")
    err = assert_error(operator.post(f"/api/runs/{failed_run.pk}/steps/b/rerun-from/", {"version": "current"},
                                     format="json"), 409, "invalid_state")
    assert "v2 has no node `b`" in err["message"]
    assert StepRun.objects.get(run=failed_run, node_id="b").status == "failed"
    assert_error(operator.post(f"/api/runs/{failed_run.pk}/steps/b/retry/", {"version": "newest"}, format="json"),
                 400, "invalid")


def test_retry_failed_steps_over_http(api, failed_run, drain):
    r = api("operator").post(f"/api/runs/{failed_run.pk}/retry-failed/", {}, format="json")
    assert r.status_code == 200, r.content
    assert r.json() == {"retried": ["b"]}
    assert StepRun.objects.get(run=failed_run, node_id="b").status == "queued"
    assert_error(api("operator").post(f"/api/runs/{failed_run.pk}/retry-failed/", {}, format="json"), 409,
                 "invalid_state")
    assert_error(api("viewer").post(f"/api/runs/{failed_run.pk}/retry-failed/", {}, format="json"), 403,
                 "permission_denied")
