"""Chaos: PostgreSQL restarted while the workers are idle; the next step starts at once.

An idle worker process keeps its database connection (CONN_MAX_AGE), and a restart closes it from the
server's side. The first delivery each worker takes after the restart must run on a fresh connection,
not fail on the dead one and wait for recovery to enqueue its step again (ORPHAN_GRACE_S: 10-20 s).
"""

from __future__ import annotations

import json
import time

import pytest

from tests.chaos.test_postgres_restart import PrivatePostgres
from tests.conftest import TEST_QUEUES, definition, node
from tests.support.private_site import PrivateSite, SiteWorkers

pytestmark = [pytest.mark.workers, pytest.mark.chaos]

RESTARTS = 3
IDLE_S = 2.0
POLL_S = 5.0
BOUND_S = 1.0  # the acceptance: a step queued after the database returns starts within 1 s


@pytest.fixture
def private_pg():
    pg = PrivatePostgres()
    yield pg
    pg.close()


def test_restart_while_idle_does_not_delay_the_next_step(private_pg, tmp_path):
    # Connections kept for longer than the test, so every idle worker holds one when the database restarts;
    # the default queue polled every 5 s, so only its LISTEN (reconnected after each restart) wakes it in time.
    queues = {**TEST_QUEUES, "default": {**TEST_QUEUES["default"], "poll": POLL_S}}
    site = PrivateSite(private_pg, WEFT_CONN_MAX_AGE="600", WEFT_QUEUES=json.dumps(queues))
    site.install()
    # Two steps at once on the default queue's two workers: each worker process opens its connection.
    site.workflow_import(definition("warm", [node(n, "tests.sleep", kwargs={"seconds": 0.5}, queue="default")
                                             for n in ("a", "b")], []), tmp_path)
    site.workflow_import(definition("one-step", [node("s1", queue="default")], []), tmp_path)
    workers = SiteWorkers(site).start()
    delays = []
    try:
        site.run_start("warm")
        site.runs_wait(total=1, timeout=60)
        assert site.query("SELECT count(DISTINCT worker) FROM engine_attempt")[0][0] == 2, \
            "the warm-up did not reach both workers of the default queue"
        for i in range(RESTARTS):
            time.sleep(IDLE_S)  # idle: nothing queued, the connections sit open
            private_pg.restart()
            run_id = site.run_start("one-step", {"i": i})
            site.runs_wait(total=2 + i, timeout=60)
            # The step was queued by the statement that started the run (recovery, enqueueing a step again,
            # moves the step's own queued_at), and its first attempt's start is its claim.
            delays.append(site.query(
                "SELECT extract(epoch FROM min(a.started_at) - r.started_at)::float FROM engine_run r "
                "JOIN engine_steprun s ON s.run_id = r.id JOIN engine_attempt a ON a.step_id = s.id "
                "WHERE r.id = %s GROUP BY r.started_at", run_id)[0][0])
    finally:
        workers.stop()
    statuses = dict(site.query("SELECT status, count(*) FROM engine_run GROUP BY status"))
    figures = ", ".join(f"{d:.3f} s" for d in delays)
    print(f"\nidle restart: queued -> started after each of {RESTARTS} restarts: {figures}")
    assert statuses == {"succeeded": 1 + RESTARTS}
    assert max(delays) < BOUND_S, f"queued -> started after each restart: {figures} (bound {BOUND_S} s)"
