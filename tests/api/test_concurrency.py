"""Races forced with real threads, each with its own database connection and HTTP client."""

from __future__ import annotations

import threading
import time

import pytest
from django.db import connection
from django_q.models import OrmQ

from engine.models import Attempt, Run, StepRun
from engine.services import scheduler
from engine.services.workflows import workflow_save
from tests.api.conftest import client_for, failing_and_approval, simple_definition

pytestmark = pytest.mark.django_db(transaction=True)


def in_threads(*calls):
    """Run each call in its own thread (own DB connection); return their results in order."""
    results: list = [None] * len(calls)
    errors: list = []

    def target(i, call):
        try:
            results[i] = call()
        except BaseException as exc:  # reported below, in the test's thread
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=target, args=(i, c)) for i, c in enumerate(calls)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert not errors, errors
    return results


def test_two_concurrent_starts_with_the_same_idempotency_key_create_one_run(monkeypatch):
    workflow_save(definition=simple_definition("race"))
    tokens = [client_for("operator"), client_for("operator")]
    # Both requests must pass the "does a run with this key exist?" check before either inserts.
    both_checked = threading.Barrier(2, timeout=10)
    real_existing = scheduler._existing_run
    first_check = threading.local()

    def existing_then_wait(workflow, key, digest):
        run = real_existing(workflow, key, digest)
        if run is None and not getattr(first_check, "done", False):
            first_check.done = True
            both_checked.wait()
        return run

    monkeypatch.setattr(scheduler, "_existing_run", existing_then_wait)

    def start(client):
        return lambda: client.post("/api/workflows/race/runs/", {"inputs": {"n": 1}}, format="json",
                                   HTTP_IDEMPOTENCY_KEY="same-key")

    first, second = in_threads(start(tokens[0]), start(tokens[1]))
    assert sorted([first.status_code, second.status_code]) == [200, 201], (first.content, second.content)
    assert first.json()["id"] == second.json()["id"]
    assert Run.objects.count() == 1
    run = Run.objects.get()
    assert StepRun.objects.filter(run=run).count() == 2


def test_two_concurrent_retries_of_one_failed_step_make_one_new_attempt(monkeypatch, drain):
    from engine.services.scheduler import run_start

    workflow, _, _ = workflow_save(definition=failing_and_approval("dbl"))
    run, _ = run_start(workflow=workflow, inputs={})
    drain()
    assert StepRun.objects.get(run=run, node_id="bad").status == "failed"
    clients = [client_for("operator"), client_for("operator")]
    # The first retry to lock the run holds its transaction until the second is blocked on that lock.
    real_load = scheduler._load
    held = threading.Event()

    def load_and_hold(tx, node_id):
        step = real_load(tx, node_id)
        if not held.is_set():
            held.set()
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                with connection.cursor() as cur:
                    cur.execute("SELECT count(*) FROM pg_locks WHERE NOT granted")
                    if cur.fetchone()[0]:
                        break
                time.sleep(0.01)
            else:
                raise AssertionError("the second retry never waited for the run lock")
        return step

    monkeypatch.setattr(scheduler, "_load", load_and_hold)
    path = f"/api/runs/{run.pk}/steps/bad/retry/"
    a, b = in_threads(lambda: clients[0].post(path), lambda: clients[1].post(path))
    assert sorted([a.status_code, b.status_code]) == [200, 409], (a.content, b.content)
    refused = a if a.status_code == 409 else b
    assert refused.json()["error"]["code"] == "invalid_state" and "queued" in refused.json()["error"]["message"]
    step = StepRun.objects.get(run=run, node_id="bad")
    assert step.status == "queued" and step.attempt == 2
    assert OrmQ.objects.count() == 1  # one delivery for the new attempt
    drain()
    assert list(Attempt.objects.filter(step=step).order_by("number").values_list("number", flat=True)) == [1, 2]
