"""GET /api/runs/{id}/logs/ and GET /api/workflows/{slug}/analytics/."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from engine.models import Run
from engine.services.scheduler import run_start
from engine.services.workflows import workflow_save
from tests.api.conftest import client_for
from tests.conftest import definition, node

pytestmark = pytest.mark.django_db

NO_BACKOFF = {"max_attempts": 2, "backoff_s": 0, "jitter": 0}


@pytest.fixture
def viewer():
    return client_for("viewer")


@pytest.fixture
def talked(drain):
    workflow, _, _ = workflow_save(definition=definition("talked", [
        node("left", "obs.talk", kwargs={"words": ["Alpha", "100%_done"]}),
        node("right", "obs.talk", kwargs={"words": ["beta", "alphabet"]}),
    ], [("left", "right")]))
    run, _ = run_start(workflow=workflow, inputs={})
    drain()
    return run


def messages(response) -> list[tuple[str, str]]:
    assert response.status_code == 200, response.content
    return [(line["node_id"], line["msg"]) for line in response.json()["lines"]]


class TestRunLogs:
    def test_all_lines_of_the_run_in_the_order_steps_ran(self, viewer, talked):
        response = viewer.get(f"/api/runs/{talked.pk}/logs/")
        assert messages(response) == [
            ("left", "said Alpha"), ("left", "printed Alpha"), ("left", "said 100%_done"),
            ("left", "printed 100%_done"), ("left", "finished talking"),
            ("right", "said beta"), ("right", "printed beta"), ("right", "said alphabet"),
            ("right", "printed alphabet"), ("right", "finished talking"),
        ]
        first = response.json()["lines"][0]
        assert first["attempt"] == 1 and first["index"] == 0 and first["level"] == "INFO"
        assert response.json()["truncated"] is False

    def test_search_is_case_insensitive_and_literal(self, viewer, talked):
        assert messages(viewer.get(f"/api/runs/{talked.pk}/logs/", {"q": "ALPHA"})) == [
            ("left", "said Alpha"), ("left", "printed Alpha"), ("right", "said alphabet"),
            ("right", "printed alphabet")]
        assert messages(viewer.get(f"/api/runs/{talked.pk}/logs/", {"q": "%_"})) == [
            ("left", "said 100%_done"), ("left", "printed 100%_done")]
        assert messages(viewer.get(f"/api/runs/{talked.pk}/logs/", {"q": "nothing like it"})) == []

    def test_filters_by_node_attempt_and_level(self, viewer, talked):
        url = f"/api/runs/{talked.pk}/logs/"
        assert messages(viewer.get(url, {"node": "right", "level": "PRINT"})) == [
            ("right", "printed beta"), ("right", "printed alphabet")]
        assert messages(viewer.get(url, {"node": "right", "attempt": 2})) == []
        assert messages(viewer.get(url, {"level": "WARNING"})) == [
            ("left", "finished talking"), ("right", "finished talking")]

    def test_limit_says_when_more_matched(self, viewer, talked):
        body = viewer.get(f"/api/runs/{talked.pk}/logs/", {"q": "said", "limit": 3}).json()
        assert [line["msg"] for line in body["lines"]] == ["said Alpha", "said 100%_done", "said beta"]
        assert body["truncated"] is True

    def test_bad_parameters_and_unknown_runs(self, viewer, talked):
        bad = viewer.get(f"/api/runs/{talked.pk}/logs/", {"limit": 0, "level": "LOUD"})
        assert bad.status_code == 400
        assert {d["path"] for d in bad.json()["error"]["details"]} == {"limit", "level"}
        missing = viewer.get("/api/runs/00000000-0000-0000-0000-000000000000/logs/")
        assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"


class TestAnalytics:
    @pytest.fixture
    def history(self, drain):
        workflow, _, _ = workflow_save(definition=definition("measured", [
            node("work", "obs.by_input", retry=NO_BACKOFF), node("fine")], []))
        inputs = [{}, {}, {}, {"flaky": True}, {"fail": True}, {"fail": True}]
        runs = [run_start(workflow=workflow, inputs=i)[0] for i in inputs]
        drain()
        now = timezone.now()
        for run, seconds in zip(runs[:4], (10, 20, 30, 40), strict=True):  # the succeeded ones
            Run.objects.filter(pk=run.pk).update(started_at=now - timedelta(minutes=5),
                                                 finished_at=now - timedelta(minutes=5) + timedelta(seconds=seconds))
        return workflow

    def test_success_rate_durations_failing_nodes_and_retries(self, viewer, history):
        response = viewer.get("/api/workflows/measured/analytics/")
        assert response.status_code == 200, response.content
        body = response.json()
        assert body["runs"] == {"pending": 0, "running": 0, "succeeded": 4, "failed": 2, "cancelled": 0}
        assert body["runs_total"] == 6
        assert body["success_rate"] == 0.6667
        assert body["duration_s"] == {"count": 4, "p50": 25.0, "p95": 38.5, "mean": 25.0, "max": 40.0}
        # "work" retries once per run that fails: flaky fails once then succeeds; each "fail" run fails twice.
        assert body["failing_nodes"] == [{"node_id": "work", "attempts": 9, "failed_attempts": 5,
                                          "failed_steps": 2, "top_error_type": "ValueError"}]
        assert body["bucket"] == "day" and len(body["series"]) == 31
        today = body["series"][-1]
        assert today == {"at": today["at"], "runs": 6, "failed_runs": 2, "attempts": 15, "retries": 3,
                         "failed_attempts": 5}
        assert sum(point["runs"] for point in body["series"][:-1]) == 0

    def test_short_windows_are_hourly(self, viewer, history):
        body = viewer.get("/api/workflows/measured/analytics/", {"days": 1}).json()
        assert body["bucket"] == "hour" and len(body["series"]) in (24, 25)
        assert sum(point["retries"] for point in body["series"]) == 3

    def test_a_workflow_without_runs_has_no_rates(self, viewer):
        workflow_save(definition=definition("idle", [node("a")], []))
        body = viewer.get("/api/workflows/idle/analytics/").json()
        assert body["success_rate"] is None and body["duration_s"]["p50"] is None and body["failing_nodes"] == []

    def test_bad_window_and_unknown_workflow(self, viewer):
        assert viewer.get("/api/workflows/idle/analytics/").status_code == 404
        workflow_save(definition=definition("idle", [node("a")], []))
        bad = viewer.get("/api/workflows/idle/analytics/", {"days": 400})
        assert bad.status_code == 400 and bad.json()["error"]["details"][0]["path"] == "days"
