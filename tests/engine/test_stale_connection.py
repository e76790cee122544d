"""A worker's kept connection that the server closed while the worker was idle (a restart, an administrator's
pg_terminate_backend): the next delivery runs on a fresh connection instead of failing on the dead one.

Fast and in-process; tests/chaos/test_idle_restart.py restarts a real server under real workers.
"""

from __future__ import annotations

import time

import psycopg
import pytest
from django.db import close_old_connections, connection

from engine.models import StepRun
from engine.services.scheduler import run_start
from engine.services.workflows import workflow_save
from engine.worker.executor import execute_step
from tests import conftest
from tests.conftest import definition, node

pytestmark = pytest.mark.django_db(transaction=True)  # the worker's connection is in autocommit, as in a worker


def backend_terminate(pid: int) -> None:
    """Terminate backend ``pid`` from another connection, and wait until it is gone."""
    with psycopg.connect(conftest.test_database_url(), autocommit=True) as other:
        other.execute("SELECT pg_terminate_backend(%s)", (pid,))
        deadline = time.monotonic() + 5
        while other.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s", (pid,)).fetchone():
            assert time.monotonic() < deadline, f"backend {pid} still there"
            time.sleep(0.02)


def test_delivery_after_the_server_closed_the_idle_connection_runs_its_step():
    # A connection of this test's own: one older than CONN_MAX_AGE (an earlier test's) would be closed by
    # close_old_connections below for its age, and the dead connection never reused.
    connection.close()
    connection.ensure_connection()
    wf = workflow_save(definition=definition("stale", [node("s1")], []))[0]
    run, _ = run_start(workflow=wf)
    step = StepRun.objects.get(run=run)
    old_pid = connection.connection.info.backend_pid
    backend_terminate(old_pid)
    close_old_connections()  # what django-q2's worker does before each task
    assert connection.connection is not None, "the connection is kept between tasks (CONN_MAX_AGE)"

    assert execute_step(str(run.pk), step.pk, step.attempt) == "succeeded"

    step.refresh_from_db()
    assert step.status == "succeeded"
    assert connection.connection.info.backend_pid != old_pid
