"""wait_for_event on real worker processes (``runworkers``): events sent over the API while the workers'
steps begin to wait, 200 runs, each event received exactly once; and a timeout through the recovery loop."""

from __future__ import annotations

import pytest

from engine.models import EventDelivery, Run, StepRun
from engine.services.scheduler import run_start
from tests.api.conftest import client_for
from tests.conftest import finished, wait_for
from tests.triggers.test_events import waiting_workflow

pytestmark = [pytest.mark.workers, pytest.mark.django_db(transaction=True)]


def test_events_sent_as_worker_steps_begin_to_wait_are_each_received_once(workers):
    waiting_workflow()
    workers.start()
    operator = client_for("operator")
    runs = []
    for i in range(200):  # each event goes out right after its run starts, as a worker picks the step up
        run, _ = run_start(workflow="waits", inputs={"ticket": f"T-{i}"})
        r = operator.post("/api/events/", {"name": "ticket.replied", "key": f"T-{i}", "id": f"w-{i}",
                                           "payload": {"i": i}}, format="json")
        assert r.status_code == 202, r.content
        runs.append(run)
    for i, run in enumerate(runs):
        done = wait_for(finished(run.pk), timeout=180, message=f"run {i}")
        assert done.status == "succeeded", (i, done.error)
        step = StepRun.objects.get(run=run, node_id="wait")
        assert step.output == {"i": i}
    assert EventDelivery.objects.count() == 200
    assert Run.objects.filter(status="succeeded").count() == 200


def test_a_timeout_fails_the_step_through_the_recovery_loop(workers):
    waiting_workflow(timeout_s=1)
    workers.start()
    run, _ = run_start(workflow="waits", inputs={"ticket": "T-1"})
    done = wait_for(finished(run.pk), timeout=120, message="timed-out run")
    assert done.status == "failed"
    step = StepRun.objects.get(run=run, node_id="wait")
    assert step.status == "failed" and step.error.startswith("timed out: no event 'ticket.replied'")
