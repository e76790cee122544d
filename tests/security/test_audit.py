"""Every operator action through the API leaves an event naming who did it, to what, and when."""

from __future__ import annotations

import pytest

from engine.models import Event, Run
from tests.api.conftest import client_for

pytestmark = pytest.mark.django_db

STEP = "/api/runs/{run}/steps/{node}/"

# action -> (method, path, body, event type it must record, node it concerns or None for the run)
ACTIONS = {
    "start": ("/api/workflows/mixed/runs/", {"inputs": {}}, "run.running", None),
    "cancel": ("/api/runs/{run}/cancel/", None, "run.cancelled", None),
    "retry": (STEP + "retry/", None, "step.retry_requested", "bad"),
    "rerun-from": (STEP + "rerun-from/", None, "step.rerun_requested", "bad"),
    "skip": (STEP + "skip/", None, "step.skipped", "bad"),
    "complete": (STEP + "complete/", {"output": {"done": True}}, "step.succeeded", "ask"),
    "approve": (STEP + "approve/", {"comment": "looks fine"}, "step.succeeded", "ask"),
    "reject": (STEP + "reject/", {"comment": "not this time"}, "step.failed", "ask"),
}
NODE_OF = {"retry": "bad", "rerun-from": "bad", "skip": "bad", "complete": "ask", "approve": "ask", "reject": "ask"}


@pytest.mark.parametrize("action", list(ACTIONS))
def test_each_operator_action_records_the_acting_user_in_an_event(action, mixed_run):
    path, body, event_type, node = ACTIONS[action]
    path = path.format(run=mixed_run.pk, node=NODE_OF.get(action, ""))
    before = set(Event.objects.values_list("id", flat=True))
    response = client_for("operator").post(path, body, format="json")
    assert response.status_code in (200, 201), response.content
    run_id = response.json()["id"] if action == "start" else mixed_run.pk
    new = Event.objects.filter(run_id=run_id).exclude(id__in=before)
    mine = new.filter(type=event_type, node_id=node or "")
    assert mine.exists(), (event_type, list(new.values_list("type", "node_id", "actor")))
    event = mine.get() if mine.count() == 1 else mine.first()
    assert event.actor == "u-operator"
    assert event.created_at is not None
    # Every event the action wrote names the user, and the run's own event stream shows it too.
    assert set(new.values_list("actor", flat=True)) == {"u-operator"}
    events = client_for("viewer").get(f"/api/runs/{run_id}/events/?limit=1000").json()["events"]
    assert any(e["type"] == event_type and e["actor"] == "u-operator" for e in events)


def test_a_run_started_through_the_api_records_who_started_it(mixed_run):
    response = client_for("designer").post("/api/workflows/mixed/runs/", {"inputs": {}}, format="json")
    run = Run.objects.get(pk=response.json()["id"])
    assert run.created_by.username == "u-designer"
    assert response.json()["created_by"] == "u-designer"
