"""Chaos: a worker host whose clock is an hour fast. Leases and broker visibility use the database clock."""

from __future__ import annotations

import os
import signal
import time

import pytest
from django.db import connection

from engine.models import Run, StepRun
from engine.services.scheduler import run_start
from engine.services.workflows import workflow_save
from tests.conftest import Workers, definition, node, wait_for

pytestmark = [pytest.mark.workers, pytest.mark.chaos, pytest.mark.django_db(transaction=True)]

LEASE_S = 3


def _db_seconds_until(ts) -> float:
    with connection.cursor() as cur:
        cur.execute("SELECT extract(epoch FROM %s - now())", [ts])
        return float(cur.fetchone()[0])


def test_lease_uses_the_database_clock_not_the_workers(worker_env):
    env = dict(worker_env, WEFT_TASK_MODULES="tests.tasks,tests.skewed_clock")
    workers = Workers(env).start()
    try:
        wf = workflow_save(definition=definition("skew", [node("a", "tests.sleep", kwargs={"seconds": 2.5})], []))[0]
        run, _ = run_start(workflow=wf)
        step = wait_for(lambda: StepRun.objects.filter(run=run, status="running", attempt=1).first(), timeout=30,
                        message="step to start on the skewed worker")
        left = _db_seconds_until(step.lease_expires_at)
        assert 0 < left <= LEASE_S + 0.5, f"lease ends {left:.1f} s from the database's now"
        os.kill(int(step.worker.rsplit(":", 1)[1]), signal.SIGKILL)
        killed = time.time()
        again = wait_for(lambda: StepRun.objects.filter(run=run, attempt=2, status__in=["running", "succeeded"])
                         .first(), timeout=30, interval=0.05, message="recovery by the skewed recovery loop")
        assert again.started_at.timestamp() - killed <= LEASE_S + 5
        run = wait_for(lambda: Run.objects.filter(pk=run.pk, status="succeeded").first(), timeout=30,
                       message="run to finish")
    finally:
        workers.stop()
