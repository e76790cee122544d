"""The schedule endpoints: create with next fire times, list, read, change, delete, pause, resume, trigger now,
backfill; bad input answers 400 naming the field and saves nothing."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from engine.models import Run, Schedule
from engine.services.workflows import workflow_save
from tests.conftest import definition, node

pytestmark = pytest.mark.django_db


@pytest.fixture
def wf():
    schema = {"type": "object", "properties": {"day": {"type": "string"}}}
    return workflow_save(definition=definition("nightly", [node("a")], [], inputs=schema))[0]


def create(client, **body):
    return client.post("/api/workflows/nightly/schedules/", body, format="json")


def test_create_answers_201_with_id_and_the_next_five_fire_times(api, wf):
    r = create(api("designer"), cron="30 2 * * *", timezone="Europe/Berlin",
               inputs={"day": "{{ scheduled_for[:10] }}"}, overlap="buffer_one", catchup_window_s=600)
    assert r.status_code == 201, r.content
    body = r.json()
    assert body["id"] == Schedule.objects.get().pk and body["workflow"] == "nightly"
    assert len(body["next_fire_times"]) == 5 and body["overlap"] == "buffer_one" and body["paused"] is False
    assert body["next_fire_times"][0].endswith(("T00:30:00Z", "T01:30:00Z"))


def test_list_read_patch_delete(api, wf):
    designer = api("designer")
    sid = create(designer, interval_s=60).json()["id"]
    assert [s["id"] for s in api("viewer").get("/api/schedules/").json()] == [sid]
    assert api("viewer").get("/api/schedules/?workflow=other").json() == []
    assert api("viewer").get(f"/api/schedules/{sid}/").json()["interval_s"] == 60
    r = designer.patch(f"/api/schedules/{sid}/", {"interval_s": None, "cron": "0 * * * *"}, format="json")
    assert r.status_code == 200 and r.json()["cron"] == "0 * * * *" and r.json()["interval_s"] is None
    assert designer.delete(f"/api/schedules/{sid}/").status_code == 204
    assert api("viewer").get(f"/api/schedules/{sid}/").status_code == 404


def test_a_patch_first_handles_the_fire_times_already_due(api, wf):
    # fire times 35, 25, 15 and 5 s ago, not fired (workers away); a 20 s window
    start = (timezone.now() - timedelta(seconds=35)).isoformat()
    designer = api("designer")
    sid = create(designer, interval_s=10, catchup_window_s=20, overlap="allow_all", start_at=start).json()["id"]
    r = designer.patch(f"/api/schedules/{sid}/", {"interval_s": None, "cron": "0 * * * *"}, format="json")
    assert r.status_code == 200, r.content
    assert r.json()["missed_count"] == 2
    assert Run.objects.filter(trigger__schedule=sid).count() == 2
    assert r.json()["next_fire_times"][0].endswith(":00:00Z")


def test_pause_resume_trigger_and_backfill(api, wf, drain):
    sid = create(api("designer"), interval_s=3600).json()["id"]
    operator = api("operator")
    assert operator.post(f"/api/schedules/{sid}/pause/").json()["paused"] is True
    assert operator.post(f"/api/schedules/{sid}/resume/").json()["paused"] is False
    r = operator.post(f"/api/schedules/{sid}/trigger/")
    assert r.status_code == 201
    run = Run.objects.get(pk=r.json()["id"])
    assert run.trigger["kind"] == "schedule" and run.trigger["manual"] is True and run.trigger["schedule"] == sid
    r = operator.post(f"/api/schedules/{sid}/backfill/", {"start": "2026-06-01T00:00:00Z",
                                                           "end": "2026-06-01T04:59:59Z"}, format="json")
    assert r.status_code == 200, r.content
    assert r.json()["fire_times"] == 5 and r.json()["buffered"] >= 4
    assert api("viewer").get("/api/runs/?trigger=schedule").json()["results"]


@pytest.mark.parametrize(("body", "field"), [
    ({"cron": "99 * * * *"}, "cron"),
    ({"cron": "* * * * *", "timezone": "Europe/Atlantis"}, "timezone"),
    ({"interval_s": 0}, "interval_s"),
    ({"interval_s": 5, "cron": "* * * * *"}, "cron"),
    ({"timezone": "UTC"}, "cron"),
    ({"interval_s": 5, "inputs": {"day": "{{ scheduled_for.nope() }}"}}, "inputs"),
    ({"interval_s": 5, "inputs": {"day": 5}}, "inputs"),
    ({"interval_s": "5"}, "interval_s"),
    ({"interval_s": 5, "overlap": "twice"}, "overlap"),
])
def test_bad_input_is_400_naming_the_field_and_saves_nothing(api, wf, body, field):
    r = create(api("designer"), **body)
    assert r.status_code == 400, r.content
    error = r.json()["error"]
    assert field in error["message"] and error["details"][0]["path"] == field
    assert not Schedule.objects.exists()


def test_a_backfill_with_end_before_start_is_400(api, wf):
    sid = create(api("designer"), interval_s=60).json()["id"]
    r = api("operator").post(f"/api/schedules/{sid}/backfill/", {"start": "2026-06-02T00:00:00Z",
                                                                  "end": "2026-06-01T00:00:00Z"}, format="json")
    assert r.status_code == 400 and r.json()["error"]["details"][0]["path"] == "end"
