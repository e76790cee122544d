"""Runs over HTTP: start (with idempotency), list, get, cancel, events, timeline."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from engine.models import Event, Run, StepRun
from engine.services.scheduler import run_start
from engine.services.workflows import workflow_save
from tests.api.conftest import make_user, simple_definition
from tests.api.test_workflows import assert_error
from tests.conftest import definition, node

pytestmark = pytest.mark.django_db

INPUTS_SCHEMA = {"type": "object", "required": ["x"], "properties": {"x": {"type": "integer"}}}


@pytest.fixture
def operator(api):
    return api("operator")


def test_start_run_returns_201_with_its_steps(operator):
    workflow_save(definition=simple_definition("go"))
    r = operator.post("/api/workflows/go/runs/", {"inputs": {"k": 1}}, format="json")
    assert r.status_code == 201, r.content
    body = r.json()
    assert body["workflow"] == "go" and body["version"] == 1 and body["status"] == "running"
    assert body["inputs"] == {"k": 1} and body["created_by"] == "u-operator"
    assert {s["node_id"]: s["status"] for s in body["steps"]} == {"a": "queued", "b": "pending"}
    assert Run.objects.filter(pk=body["id"]).exists()


def test_start_takes_a_priority_else_the_definitions_and_refuses_one_out_of_range(operator):
    workflow_save(definition={**simple_definition("prio"), "priority": 3})
    r = operator.post("/api/workflows/prio/runs/", {"inputs": {}, "priority": -20}, format="json")
    assert r.status_code == 201, r.content
    assert r.json()["priority"] == -20 and Run.objects.get(pk=r.json()["id"]).priority == -20
    r = operator.post("/api/workflows/prio/runs/", {}, format="json")
    assert (r.json()["priority"], r.json()["durability"]) == (3, "strict")
    for bad in (1001, "high", None, 2.5):
        r = operator.post("/api/workflows/prio/runs/", {"priority": bad}, format="json")
        assert "priority" in {d["path"] for d in assert_error(r, 400, "invalid")["details"]}, r.json()
    assert Run.objects.filter(workflow__slug="prio").count() == 2


def test_start_without_body_uses_empty_inputs(operator):
    workflow_save(definition=simple_definition("nobody"))
    r = operator.post("/api/workflows/nobody/runs/")
    assert r.status_code == 201 and r.json()["inputs"] == {}


def test_inputs_failing_the_schema_are_400_and_start_nothing(operator):
    workflow_save(definition=simple_definition("typed", inputs=INPUTS_SCHEMA))
    err = assert_error(operator.post("/api/workflows/typed/runs/", {"inputs": {"x": "no"}}, format="json"),
                       400, "inputs_invalid")
    assert err["details"][0]["path"] == "inputs['x']"
    assert_error(operator.post("/api/workflows/typed/runs/", {"inputs": [1]}, format="json"), 400, "invalid")
    assert Run.objects.count() == 0


def test_same_idempotency_key_and_body_returns_the_same_run_with_200(operator):
    workflow_save(definition=simple_definition("idem"))
    first = operator.post("/api/workflows/idem/runs/", {"inputs": {"n": 1}}, format="json",
                          HTTP_IDEMPOTENCY_KEY="order-42")
    again = operator.post("/api/workflows/idem/runs/", {"inputs": {"n": 1}}, format="json",
                          HTTP_IDEMPOTENCY_KEY="order-42")
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json()["id"] == again.json()["id"]
    assert again.json()["idempotency_key"] == "order-42"
    assert Run.objects.count() == 1


def test_same_idempotency_key_with_another_body_is_409(operator):
    workflow_save(definition=simple_definition("idem2"))
    operator.post("/api/workflows/idem2/runs/", {"inputs": {"n": 1}}, format="json", HTTP_IDEMPOTENCY_KEY="k")
    r = operator.post("/api/workflows/idem2/runs/", {"inputs": {"n": 2}}, format="json", HTTP_IDEMPOTENCY_KEY="k")
    err = assert_error(r, 409, "idempotency_conflict")
    assert "different inputs" in err["message"]
    assert Run.objects.count() == 1


def test_a_new_idempotency_key_starts_a_new_run(operator):
    workflow_save(definition=simple_definition("idem3"))
    a = operator.post("/api/workflows/idem3/runs/", {}, format="json", HTTP_IDEMPOTENCY_KEY="k1")
    b = operator.post("/api/workflows/idem3/runs/", {}, format="json", HTTP_IDEMPOTENCY_KEY="k2")
    assert (a.status_code, b.status_code) == (201, 201) and a.json()["id"] != b.json()["id"]


def test_overlong_idempotency_key_is_400(operator):
    workflow_save(definition=simple_definition("idem4"))
    r = operator.post("/api/workflows/idem4/runs/", {}, format="json", HTTP_IDEMPOTENCY_KEY="k" * 201)
    err = assert_error(r, 400, "invalid")
    assert err["details"][0]["path"] == "Idempotency-Key"
    assert Run.objects.count() == 0


def test_list_filters_by_workflow_status_and_start_time(api):
    one, _, _ = workflow_save(definition=simple_definition("one"))
    two, _, _ = workflow_save(definition=simple_definition("two"))
    r1, _ = run_start(workflow=one, inputs={})
    r2, _ = run_start(workflow=two, inputs={})
    r3, _ = run_start(workflow=two, inputs={})
    Run.objects.filter(pk=r1.pk).update(created_at=timezone.now() - timedelta(days=2))
    Run.objects.filter(pk=r3.pk).update(status="cancelled")
    client = api("viewer")

    def ids(**params):
        response = client.get("/api/runs/", params)
        assert response.status_code == 200, response.content
        return {r["id"] for r in response.json()["results"]}

    assert ids() == {str(r1.pk), str(r2.pk), str(r3.pk)}
    assert ids(workflow="two") == {str(r2.pk), str(r3.pk)}
    assert ids(status="cancelled") == {str(r3.pk)}
    since = (timezone.now() - timedelta(days=1)).isoformat()
    assert ids(started_after=since) == {str(r2.pk), str(r3.pk)}
    assert ids(started_before=since) == {str(r1.pk)}
    assert_error(client.get("/api/runs/", {"status": "sleepy"}), 400, "invalid")
    assert_error(client.get("/api/runs/", {"started_after": "yesterday"}), 400, "invalid")


def test_a_run_records_how_it_started_and_the_list_filters_by_it(api, client):
    workflow_save(definition=simple_definition("trig"))
    by_token = api("operator").post("/api/workflows/trig/runs/", {"inputs": {}}, format="json")
    assert by_token.status_code == 201, by_token.content
    assert by_token.json()["trigger"] == {"kind": "api", "user": "u-operator"}
    client.force_login(make_user("operator"))
    by_browser = client.post("/api/workflows/trig/runs/", {"inputs": {}}, content_type="application/json")
    assert by_browser.status_code == 201, by_browser.content
    assert by_browser.json()["trigger"] == {"kind": "manual", "user": "u-operator"}
    scheduled, _ = run_start(workflow="trig", trigger={"kind": "schedule", "schedule": 7})
    assert scheduled.trigger == {"kind": "schedule", "schedule": 7}
    assert Run.objects.get(pk=scheduled.pk).trigger == {"kind": "schedule", "schedule": 7}
    viewer = api("viewer")

    def ids(kind):
        response = viewer.get("/api/runs/", {"trigger": kind})
        assert response.status_code == 200, response.content
        return {r["id"] for r in response.json()["results"]}

    assert ids("api") == {by_token.json()["id"]}
    assert ids("manual") == {by_browser.json()["id"]}
    assert ids("schedule") == {str(scheduled.pk)}
    assert ids("webhook") == set()
    assert_error(viewer.get("/api/runs/", {"trigger": "telepathy"}), 400, "invalid")
    with pytest.raises(ValueError, match="unknown trigger kind"):
        run_start(workflow="trig", trigger={"kind": "telepathy"})


def test_list_uses_cursor_pagination_newest_first(api):
    wf, _, _ = workflow_save(definition=simple_definition("many"))
    runs = [run_start(workflow=wf, inputs={"i": i})[0] for i in range(5)]
    for i, run in enumerate(runs):
        Run.objects.filter(pk=run.pk).update(created_at=timezone.now() - timedelta(minutes=10 - i))
    client = api("viewer")
    seen = []
    page = client.get("/api/runs/", {"page_size": 2}).json()
    while True:
        seen += [r["id"] for r in page["results"]]
        if not page["next"]:
            break
        page = client.get(page["next"]).json()
    assert seen == [str(r.pk) for r in reversed(runs)]
    assert_error(client.get("/api/runs/", {"cursor": "garbage"}), 404, "not_found")


def test_get_run_shows_every_step_with_attempts_timings_queue_output_and_error(api, drain):
    d = definition("shape", [node("ok"), node("bad", "tests.raise", kwargs={"message": "nope"},
                                               retry={"max_attempts": 2, "backoff_s": 0}), node("fast", queue="fast")],
                   [("ok", "bad")])
    wf, _, _ = workflow_save(definition=d)
    run, _ = run_start(workflow=wf, inputs={})
    drain()
    body = api("viewer").get(f"/api/runs/{run.pk}/").json()
    assert body["status"] == "failed" and "bad" in body["error"]
    steps = {s["node_id"]: s for s in body["steps"]}
    assert [s["node_id"] for s in body["steps"]] == ["ok", "bad", "fast"]  # topological order
    assert steps["ok"]["status"] == "succeeded" and steps["ok"]["output"] == {"node": "ok"}
    assert steps["ok"]["attempts_count"] == 1 and steps["ok"]["started_at"] and steps["ok"]["finished_at"]
    assert steps["bad"]["status"] == "failed" and steps["bad"]["attempts_count"] == 2
    assert "RuntimeError: nope" in steps["bad"]["error"]
    assert steps["fast"]["queue"] == "fast"
    assert body["last_seq"] == Event.objects.filter(run=run).count()


def test_unknown_or_malformed_run_id_is_404_json(api):
    client = api("viewer")
    assert_error(client.get(f"/api/runs/{uuid.uuid4()}/"), 404, "not_found")
    assert_error(client.get("/api/runs/not-a-uuid/"), 404, "not_found")
    assert_error(api("operator").post(f"/api/runs/{uuid.uuid4()}/cancel/"), 404, "not_found")


def test_cancel_cancels_pending_steps_and_a_second_cancel_is_409_naming_the_state(operator):
    wf, _, _ = workflow_save(definition=simple_definition("stop"))
    run, _ = run_start(workflow=wf, inputs={})
    r = operator.post(f"/api/runs/{run.pk}/cancel/")
    assert r.status_code == 200 and r.json()["status"] == "cancelled"
    assert set(StepRun.objects.filter(run=run).values_list("status", flat=True)) == {"cancelled"}
    err = assert_error(operator.post(f"/api/runs/{run.pk}/cancel/"), 409, "invalid_state")
    assert "cancelled" in err["message"]


def test_events_are_gapless_after_a_seq_and_limited(api, drain):
    wf, _, _ = workflow_save(definition=simple_definition("ev"))
    run, _ = run_start(workflow=wf, inputs={})
    drain()
    total = Event.objects.filter(run=run).count()
    client = api("viewer")
    everything = client.get(f"/api/runs/{run.pk}/events/").json()
    assert [e["seq"] for e in everything["events"]] == list(range(1, total + 1))
    assert everything["last_seq"] == total and everything["has_more"] is False
    assert everything["events"][0]["type"] == "run.running"
    assert everything["events"][-1]["type"] == "run.succeeded"
    page = client.get(f"/api/runs/{run.pk}/events/", {"after": 2, "limit": 3}).json()
    assert [e["seq"] for e in page["events"]] == [3, 4, 5] and page["has_more"] is True
    assert client.get(f"/api/runs/{run.pk}/events/", {"after": total}).json()["events"] == []
    assert_error(client.get(f"/api/runs/{run.pk}/events/", {"after": -1}), 400, "invalid")
    assert_error(client.get(f"/api/runs/{run.pk}/events/", {"limit": 5000}), 400, "invalid")


@pytest.mark.django_db(transaction=True)  # real commit times, so step durations differ
def test_timeline_lists_attempts_per_step_and_the_critical_path_follows_durations(api, drain):
    # The slow branch has fewer steps than the quick one: only real durations make it critical.
    d = definition("tl", [node("a"), node("slow", "tests.sleep", kwargs={"seconds": 0.3}),
                          node("q1"), node("q2"), node("q3")],
                   [("a", "slow"), ("a", "q1"), ("q1", "q2"), ("q2", "q3")])
    wf, _, _ = workflow_save(definition=d)
    run, _ = run_start(workflow=wf, inputs={})
    drain()
    body = api("viewer").get(f"/api/runs/{run.pk}/timeline/").json()
    assert body["status"] == "succeeded"
    steps = {s["node_id"]: s for s in body["steps"]}
    assert set(steps) == {"a", "slow", "q1", "q2", "q3"}
    attempt = steps["slow"]["attempts"][0]
    assert attempt["number"] == 1 and attempt["outcome"] == "succeeded"
    assert attempt["queued_at"] and attempt["started_at"] and attempt["finished_at"]
    assert attempt["duration_s"] >= 0.3
    assert body["critical_path"] == ["a", "slow"]


def test_a_mapped_node_weighs_its_slowest_item_and_the_run_view_gets_the_apis_critical_path(api, drain):
    from engine.models import Attempt
    from webui.snapshot import run_snapshot

    each = {**node("each", kwargs={"item": "{{ item }}"}), "for_each": "{{ nodes.source.output.xs }}"}
    d = definition("tl-map", [node("source", kwargs={"xs": "{{ inputs.xs }}"}), each, node("other")],
                   [("source", "each"), ("source", "other")])
    run, _ = run_start(workflow=workflow_save(definition=d)[0], inputs={"xs": [1, 2, 3]})
    drain()
    t0 = timezone.now() - timedelta(minutes=5)
    for attempt in Attempt.objects.filter(step__run=run):
        # Items run side by side for 1 s, one of them 10 s; "other" runs 5 s: the slowest item makes the map critical.
        seconds = 10 if attempt.step.node_id == "each[1]" else 5 if attempt.step.node_id == "other" else 1
        Attempt.objects.filter(pk=attempt.pk).update(started_at=t0, finished_at=t0 + timedelta(seconds=seconds))
    body = api("viewer").get(f"/api/runs/{run.pk}/timeline/").json()
    assert body["critical_path"] == ["source", "each"]
    assert run_snapshot(run.pk)["critical_path"] == body["critical_path"]


def test_timeline_of_a_run_that_has_not_executed_has_no_attempts(api):
    wf, _, _ = workflow_save(definition=simple_definition("idle"))
    run, _ = run_start(workflow=wf, inputs={})
    body = api("viewer").get(f"/api/runs/{run.pk}/timeline/").json()
    assert all(s["attempts"] == [] for s in body["steps"]) and body["critical_path"] == []
