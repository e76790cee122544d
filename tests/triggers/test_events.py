"""Events: event triggers start runs (filters, resends), and wait_for_event steps receive them, also when the
event came first, and never twice; timeouts fire through recovery."""

from __future__ import annotations

import threading
import time

import pytest
from django.db import connection

from engine.models import EventDelivery, EventTrigger, OutsideEvent, Run, StepRun
from engine.services.events import event_send, event_trigger_create
from engine.services.scheduler import run_start
from engine.services.workflows import workflow_save
from tests.api.conftest import client_for
from tests.conftest import definition, node
from tests.triggers.conftest import ticket_workflow

pytestmark = pytest.mark.django_db


def waiting_workflow(slug="waits", **config):
    nodes = [{"id": "wait", "type": "wait_for_event",
              "config": {"event": "ticket.replied", "key": "{{ inputs.ticket }}", **config}}, node("after")]
    workflow, _, _ = workflow_save(definition=definition(slug, nodes, [("wait", "after")]))
    return workflow


def wait_step(run) -> StepRun:
    return StepRun.objects.get(run=run, node_id="wait")


# -- event triggers ---------------------------------------------------------------------------


def test_an_event_starts_the_workflows_whose_trigger_matches_and_a_resend_does_nothing():
    ticket_workflow("tickets")
    ticket_workflow("urgent")
    ticket_workflow("other")
    event_trigger_create(workflow="tickets", name="ticket.opened")
    event_trigger_create(workflow="urgent", name="ticket.opened", filter="payload.priority > 2")
    event_trigger_create(workflow="other", name="ticket.opened", filter="payload.priority == `9`",
                         filter_language="jmespath")
    r = client_for("operator").post("/api/events/", {"name": "ticket.opened", "id": "evt-1",
                                                     "payload": {"ticket": "T-1", "priority": 5}}, format="json")
    assert r.status_code == 202, r.content
    started = {x["workflow"]: x["run"] for x in r.json()["runs"]}
    assert set(started) == {"tickets", "urgent"}
    run = Run.objects.get(pk=started["urgent"])
    assert run.trigger == {"kind": "event", "event_id": "evt-1", "name": "ticket.opened",
                           "trigger_id": EventTrigger.objects.get(workflow__slug="urgent").pk, "user": "u-operator"}
    assert run.inputs == {"ticket": "T-1", "priority": 5}
    again = client_for("operator").post("/api/events/", {"name": "ticket.opened", "id": "evt-1",
                                                         "payload": {"ticket": "T-1", "priority": 5}}, format="json")
    assert again.status_code == 200 and again.json()["duplicate"] is True
    assert again.json()["runs"] == r.json()["runs"]
    assert Run.objects.count() == 2 and OutsideEvent.objects.count() == 1
    r = client_for("viewer").get("/api/runs/?trigger=event")
    assert len(r.json()["results"]) == 2


def test_a_run_its_workflow_refuses_is_named_and_the_others_start():
    ticket_workflow("tickets")
    ticket_workflow("mapped")
    event_trigger_create(workflow="tickets", name="ticket.opened")
    event_trigger_create(workflow="mapped", name="ticket.opened", inputs={"ticket": "{{ payload.id | string }}"})
    result = event_send(name="ticket.opened", payload={"id": 12})
    assert [x["workflow"] for x in result["runs"]] == ["mapped"]
    assert Run.objects.get().inputs == {"ticket": "12"}
    assert result["skipped"][0]["workflow"] == "tickets" and "inputs" in result["skipped"][0]["error"]


def test_bad_triggers_and_events_are_refused_naming_the_field():
    ticket_workflow("tickets")
    designer = client_for("designer")
    for body, field in [({"name": "x", "filter": "payload.a =="}, "filter"),
                        ({"name": "x", "filter": "a[", "filter_language": "jmespath"}, "filter"),
                        ({"name": " "}, "name")]:
        r = designer.post("/api/workflows/tickets/event-triggers/", body, format="json")
        assert r.status_code == 400, r.content
        detail = r.json()["error"]["details"][0]
        assert detail.get("field", detail.get("path")) == field
    assert EventTrigger.objects.count() == 0
    r = designer.post("/api/workflows/nope/event-triggers/", {"name": "x"}, format="json")
    assert r.status_code == 404
    r = client_for("operator").post("/api/events/", {"payload": {}}, format="json")
    assert r.status_code == 400 and "name" in str(r.json()["error"]["details"])
    assert OutsideEvent.objects.count() == 0


def test_event_triggers_are_listed_and_deleted():
    ticket_workflow("tickets")
    created = client_for("designer").post("/api/workflows/tickets/event-triggers/", {"name": "a.b"},
                                          format="json").json()
    listed = client_for("viewer").get("/api/workflows/tickets/event-triggers/").json()
    assert [t["id"] for t in listed] == [created["id"]]
    assert client_for("designer").delete(f"/api/event-triggers/{created['id']}/").status_code == 204
    assert client_for("designer").delete(f"/api/event-triggers/{created['id']}/").status_code == 404


def test_an_event_sender_may_send_events_and_nothing_else():
    from django.contrib.auth.models import Group, User
    from rest_framework.authtoken.models import Token
    from rest_framework.test import APIClient

    user = User.objects.create(username="ci-bot")
    user.groups.add(Group.objects.get_or_create(name="event_sender")[0])  # a flush by an earlier test empties it
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    assert client.post("/api/events/", {"name": "deploy.done"}, format="json").status_code == 202
    assert client.get("/api/runs/").status_code == 403
    assert OutsideEvent.objects.get().sender == "ci-bot"


# -- wait_for_event ---------------------------------------------------------------------------


def test_a_waiting_step_receives_its_event_as_output(drain):
    waiting_workflow()
    run, _ = run_start(workflow="waits", inputs={"ticket": "T-7"})
    drain()
    step = wait_step(run)
    assert (step.status, step.waiting_reason) == ("waiting", "event")
    assert step.waiting_detail == {"event": "ticket.replied", "key": "T-7"}
    other = event_send(name="ticket.replied", key="T-8", payload={"text": "not for you"})
    assert other["woken"] == []
    result = event_send(name="ticket.replied", key="T-7", payload={"text": "thanks"}, event_id="e-7")
    assert result["woken"] == [{"run": str(run.pk), "step": "wait"}]
    drain()
    step.refresh_from_db()
    run.refresh_from_db()
    assert (step.status, step.output, run.status) == ("succeeded", {"text": "thanks"}, "succeeded")
    assert event_send(name="ticket.replied", key="T-7", payload={}, event_id="e-7")["duplicate"] is True
    assert EventDelivery.objects.count() == 1


def test_an_event_that_came_before_the_step_waited_is_not_lost(drain):
    waiting_workflow()
    run, _ = run_start(workflow="waits", inputs={"ticket": "T-1"})
    assert wait_step(run).status == "queued"  # started, not yet waiting
    assert event_send(name="ticket.replied", key="T-1", payload={"early": True})["woken"] == []
    drain()
    step = wait_step(run)
    run.refresh_from_db()
    assert (step.status, step.output, run.status) == ("succeeded", {"early": True}, "succeeded")
    attempt = step.attempts.get()
    assert attempt.outcome == "succeeded"
    # A second run of the same ticket does not receive an event sent before it started...
    later, _ = run_start(workflow="waits", inputs={"ticket": "T-1"})
    drain()
    assert wait_step(later).status == "waiting"
    # ...but the next one, and only that run's step.
    assert event_send(name="ticket.replied", key="T-1", payload={"n": 2})["woken"] == [
        {"run": str(later.pk), "step": "wait"}]


def test_an_event_older_than_the_retention_is_not_received(drain, settings):
    waiting_workflow()
    run, _ = run_start(workflow="waits", inputs={"ticket": "T-1"})
    event_send(name="ticket.replied", key="T-1", payload={})
    OutsideEvent.objects.update(received_at=run.created_at)
    settings.WEFT_EVENT_RETENTION_S = 1
    time.sleep(1.1)
    drain()
    assert wait_step(run).status == "waiting"


@pytest.mark.parametrize("outcome", ["fail", "succeed"])
def test_no_event_within_the_timeout_applies_the_timeout_outcome(drain, outcome):
    waiting_workflow(timeout_s=0.2, timeout_outcome=outcome, timeout_output={"timed_out": True})
    run, _ = run_start(workflow="waits", inputs={"ticket": "T-1"})
    drain()
    assert wait_step(run).status == "waiting"
    time.sleep(0.3)
    drain()
    step = wait_step(run)
    if outcome == "fail":
        assert step.status == "failed" and "no event 'ticket.replied' with key 'T-1' within 0.2 s" in step.error
    else:
        assert (step.status, step.output) == ("succeeded", {"timed_out": True})
    assert event_send(name="ticket.replied", key="T-1", payload={})["woken"] == []


def _execute_queued_step():
    from django_q.models import OrmQ
    from django_q.signing import SignedPackage

    from engine.worker.executor import execute_step

    row = OrmQ.objects.order_by("id").first()
    OrmQ.objects.filter(pk=row.pk).delete()
    execute_step(*SignedPackage.loads(row.payload)["args"])


@pytest.mark.django_db(transaction=True)
def test_an_event_sent_as_the_step_begins_to_wait_is_received_exactly_once(drain):
    """200 times: one thread runs the step (which records its wait), another sends the event, released together
    by a barrier, each in its own Postgres transaction. The step always receives the event, once."""
    waiting_workflow()
    for i in range(200):
        run, _ = run_start(workflow="waits", inputs={"ticket": f"T-{i}"})
        barrier = threading.Barrier(2)
        errors = []

        def worker(barrier=barrier, errors=errors):
            try:
                barrier.wait()
                _execute_queued_step()
            except Exception as exc:  # noqa: BLE001 - reported below
                errors.append(exc)
            finally:
                connection.close()

        def sender(i=i, barrier=barrier, errors=errors):
            try:
                barrier.wait()
                event_send(name="ticket.replied", key=f"T-{i}", payload={"i": i}, event_id=f"race-{i}")
            except Exception as exc:  # noqa: BLE001 - reported below
                errors.append(exc)
            finally:
                connection.close()

        threads = [threading.Thread(target=worker), threading.Thread(target=sender)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == [], errors
        step = wait_step(run)
        assert (step.status, step.output) == ("succeeded", {"i": i}), f"round {i}: {step.status}"
        assert EventDelivery.objects.filter(step=step).count() == 1
        drain()
    assert Run.objects.filter(status="succeeded").count() == 200


def test_recovery_wakes_a_step_whose_wake_was_lost_with_the_sending_process(drain, monkeypatch):
    from engine.core import eventwaits
    from engine.worker.recovery import anything_due

    waiting_workflow()
    run, _ = run_start(workflow="waits", inputs={"ticket": "T-3"})
    drain()
    assert wait_step(run).status == "waiting" and not anything_due()
    with monkeypatch.context() as m:  # the process stops after storing the event, before waking anyone
        m.setattr(eventwaits, "event_wake", lambda event: [])
        assert event_send(name="ticket.replied", key="T-3", payload={"late": 1})["woken"] == []
    assert wait_step(run).status == "waiting" and anything_due()
    drain()
    step = wait_step(run)
    assert (step.status, step.output) == ("succeeded", {"late": 1}) and not anything_due()
    assert EventDelivery.objects.filter(step=step).count() == 1


def test_purge_events_deletes_only_events_older_than_the_retention(settings):
    from io import StringIO

    from django.core.management import call_command
    from django.db.models.functions import Now

    event_send(name="old", payload={}, event_id="old-1")
    event_send(name="new", payload={}, event_id="new-1")
    from datetime import timedelta

    OutsideEvent.objects.filter(event_id="old-1").update(received_at=Now() - timedelta(days=2))
    out = StringIO()
    call_command("purge_events", stdout=out)
    assert out.getvalue().strip() == "deleted 1 event(s)"
    assert list(OutsideEvent.objects.values_list("event_id", flat=True)) == ["new-1"]


def test_enabled_must_be_a_json_boolean():
    ticket_workflow("tickets")
    r = client_for("designer").post("/api/workflows/tickets/event-triggers/", {"name": "a", "enabled": 0},
                                    format="json")
    assert r.status_code == 400 and EventTrigger.objects.count() == 0
    r = client_for("designer").post("/api/workflows/tickets/webhooks/", {"enabled": "yes"}, format="json")
    assert r.status_code == 400


def test_a_filter_that_cannot_be_parsed_is_400_not_500():
    ticket_workflow("tickets")
    r = client_for("designer").post("/api/workflows/tickets/event-triggers/", {"name": "a", "filter": "0" * 5000},
                                    format="json")
    assert r.status_code == 400 and r.json()["error"]["details"][0]["field"] == "filter"
    assert EventTrigger.objects.count() == 0
