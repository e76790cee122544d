"""Long step: a step on `slow` that runs many leases and many broker visibility windows long, kept alive
by its heartbeat, runs exactly once: one attempt, one execution, never delivered to a worker again.

In the suite: a 30 s step with a 3 s lease and a 2 s visibility window. With --soak: 20 minutes
(WEFT_LONG_STEP_S). django-q2's own `retry` is not the redelivery clock here: WeftBroker locks a
prefetched message for WEFT_BROKER_VISIBILITY_S and the claim deletes it (config.queues still requires
`retry` above the queue's timeout, which in turn must exceed the step).
"""

from __future__ import annotations

import json
import os
import time

import pytest
from django.db import connection
from django_q.models import OrmQ

from config.queues import min_retry
from engine.models import Attempt, Event, Run, StepRun
from engine.services.scheduler import run_start
from engine.services.workflows import workflow_save
from tests.conftest import Workers, definition, node, wait_for

pytestmark = [pytest.mark.workers, pytest.mark.chaos, pytest.mark.django_db(transaction=True)]

LEASE_S = 3
VISIBILITY_S = 2


def long_step_runs_once(worker_env, tmp_path, seconds: float) -> dict:
    timeout = int(seconds) + 120
    slow = {"workers": 1, "timeout": timeout, "poll": 0.05, "queue_limit": 1}
    slow["retry"] = min_retry(timeout=timeout, queue_limit=1, workers=1) + 1
    queues = {"default": {"workers": 1, "timeout": 60, "poll": 0.05}, "slow": slow}
    env = dict(worker_env, WEFT_LEASE_S=str(LEASE_S), WEFT_BROKER_VISIBILITY_S=str(VISIBILITY_S),
               WEFT_QUEUES=json.dumps(queues))
    executions, after = tmp_path / "executions", tmp_path / "after"
    wf = workflow_save(definition=definition("long-step", [
        node("long", "tests.sleep", kwargs={"seconds": seconds, "path": str(executions)}, queue="slow",
             retry={"max_attempts": 3, "backoff_s": 0.2}),
        node("after", "tests.count", kwargs={"path": str(after)}),
    ], [("long", "after")]))[0]
    workers = Workers(env).start()
    try:
        run, _ = run_start(workflow=wf, inputs={})
        step = StepRun.objects.get(run=run, node_id="long")
        wait_for(lambda: StepRun.objects.get(pk=step.pk).status == "running", timeout=60, message="the claim")
        claimed_at = time.monotonic()
        samples, heartbeats, broker_rows, lapsed = 0, set(), 0, 0
        while StepRun.objects.get(pk=step.pk).status == "running":
            with connection.cursor() as cur:
                cur.execute("SELECT lease_expires_at > now(), heartbeat_at FROM engine_steprun WHERE id = %s "
                            "AND status = 'running'", [step.pk])
                row = cur.fetchone()
            if row is not None:
                samples += 1
                lapsed += not row[0]
                heartbeats.add(row[1])
            # The claim deleted the step's broker message: nothing can deliver it again while it runs.
            broker_rows += sum(1 for payload in OrmQ.objects.values_list("payload", flat=True)
                               if _carries(payload, step.pk))
            time.sleep(0.25)
            assert time.monotonic() - claimed_at < seconds + 120, "the step never finished"
        ran_s = time.monotonic() - claimed_at
        wait_for(lambda: Run.objects.get(pk=run.pk).status != "running", timeout=60, message="the run to finish")
    finally:
        workers.stop()
    step.refresh_from_db()
    events = list(Event.objects.filter(run=run, node_id="long").order_by("seq").values_list("type", flat=True))
    attempts = list(Attempt.objects.filter(step=step).values_list("number", "outcome"))
    figures = {"step_s": round(ran_s, 1), "lease_s": LEASE_S, "visibility_s": VISIBILITY_S,
               "heartbeats_seen": len(heartbeats), "samples": samples, "attempts": attempts,
               "executions": executions.read_text().count("\n") if executions.exists() else 0}
    print(f"\nlong step: {figures}")
    assert Run.objects.get(pk=run.pk).status == "succeeded"
    assert step.status == "succeeded" and step.attempt == 1
    assert attempts == [(1, "succeeded")]
    assert figures["executions"] == 1
    assert after.read_text().split() == ["after"]
    assert events == ["step.queued", "step.running", "step.succeeded"]  # never lost, never queued again
    assert lapsed == 0 and broker_rows == 0
    assert ran_s >= seconds - 1
    # the heartbeat kept moving the lease (every lease/3 s); sampled every 0.25 s, most beats are seen
    assert len(heartbeats) >= seconds / LEASE_S, figures
    return figures


def _carries(payload: str, step_id: int) -> bool:
    from django_q.signing import SignedPackage

    return SignedPackage.loads(payload)["args"][1] == step_id


def test_step_ten_leases_long_runs_once_and_is_never_redelivered(worker_env, tmp_path):
    long_step_runs_once(worker_env, tmp_path, seconds=float(os.environ.get("WEFT_LONG_STEP_S", "30")))


@pytest.mark.soak
@pytest.mark.timeout(1800)
def test_twenty_minute_step_runs_once_and_is_never_redelivered(worker_env, tmp_path):
    long_step_runs_once(worker_env, tmp_path, seconds=float(os.environ.get("WEFT_LONG_STEP_SOAK_S", "1200")))
