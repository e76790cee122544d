"""The plan PostgreSQL makes for the queue page's count of steps finished in the last minute.

The queue page (and /readyz, and the API's catalog) asks, per queue, how many steps finished in the last
minute. Step runs are never deleted with their queue's history, so without an index on when a step finished
that count reads every step run ever made, on every refresh.
"""

from __future__ import annotations

import pytest
from django.db import connection

from engine.core.queues import queue_stats
from engine.services.scheduler import run_start
from engine.services.workflows import workflow_save
from tests.conftest import chain

pytestmark = pytest.mark.django_db(transaction=True)

INDEX = "steprun_queue_finished"


def _queue_stats_statements() -> list[tuple[str, object]]:
    """The statements queue_stats() runs, as (sql, params), whatever file they live in."""
    seen: list[tuple[str, object]] = []

    def record(execute, sql, params, many, context):
        seen.append((sql, params))
        return execute(sql, params, many, context)

    with connection.execute_wrapper(record):
        queue_stats()
    return seen


def test_finished_last_minute_reads_the_finished_at_index_not_every_step():
    run, _ = run_start(workflow=workflow_save(definition=chain("plans-finished", 2))[0])
    with connection.cursor() as cur:  # a long history: thousands of steps that finished long ago
        cur.execute("""
            INSERT INTO engine_steprun (run_id, node_id, node_type, queue, status, attempt, generation,
                remaining_upstream, upstream_succeeded, upstream_failed, upstream_skipped, error, waiting_reason,
                worker, queued_at, finished_at)
            SELECT %s, 'x' || i, 'noop', 'default', 'succeeded', 1, 0, 0, 0, 0, 0, '', '', '',
                now() - interval '30 days', now() - interval '30 days' + make_interval(secs => i)
            FROM generate_series(1, 20000) AS i""", [run.pk])
        cur.execute("ANALYZE engine_steprun")
    statements = [(sql, params) for sql, params in _queue_stats_statements() if "finished_at" in sql]
    assert len(statements) == 1, f"no one statement of queue_stats() reads finished_at: {statements}"
    sql, params = statements[0]
    with connection.cursor() as cur:
        cur.execute("EXPLAIN " + sql, params)
        plan = "\n".join(row[0] for row in cur.fetchall())
    finished = [line for line in plan.splitlines() if "finished_at" in line]
    assert INDEX in plan, f"the count of steps finished in the last minute reads no index on finished_at:\n{plan}"
    assert not [line for line in finished if "Filter" in line], f"finished_at is filtered, not looked up:\n{plan}"
    assert "Seq Scan on engine_steprun" not in plan, plan
