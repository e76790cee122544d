"""The plans PostgreSQL makes for the hot path's statements that find steps by id.

Those statements are prepared with generic plans (config/settings.py). A step's status passes through
'queued' and 'running' on every attempt, so the partial indexes on those statuses hold an entry for every
step that did, until a vacuum; a lookup by id that read one of them would read all of it, on every call.
"""

from __future__ import annotations

import re

import pytest
from django.db import connection

from engine.core import hotpath, journal, transitions
from engine.core.runtx import CLAIM_SQL
from engine.services.scheduler import run_start
from engine.services.workflows import workflow_save
from engine.worker import liveness
from tests.conftest import chain

pytestmark = pytest.mark.django_db(transaction=True)

PARTIAL = ("steprun_running_lease", "steprun_queued", "steprun_run_queued")


def _generic_plan(sql: str, params: dict | list) -> str:
    """EXPLAIN of ``sql``'s generic plan (what a prepared statement runs with here), for ``params``."""
    names: list = []

    def placeholder(match):
        key = match.group(1)
        if key not in names:
            names.append(key)
        return f"${names.index(key) + 1}"

    if isinstance(params, dict):
        text = re.sub(r"%\((\w+)\)s", placeholder, sql)
        values = [params[n] for n in names]
    else:
        counter = iter(range(1, len(params) + 1))
        text = re.sub(r"%s", lambda m: f"${next(counter)}", sql)
        values = list(params)
    with connection.cursor() as cur:
        cur.execute("SHOW plan_cache_mode")
        assert cur.fetchone()[0] == "force_generic_plan"
        cur.execute(f"PREPARE weft_plan AS {text}")
        try:
            cur.execute(f"EXPLAIN EXECUTE weft_plan({', '.join(['%s'] * len(values))})", values)
            return "\n".join(row[0] for row in cur.fetchall())
        finally:
            cur.execute("DEALLOCATE weft_plan")


def test_lookups_by_id_read_the_primary_key_not_a_partial_index():
    run, _ = run_start(workflow=workflow_save(definition=chain("plans", 3))[0])
    step = run.steps.get(node_id="s1")
    with connection.cursor() as cur:  # thousands of finished steps, a few queued and running: small partial indexes
        cur.execute("""
            INSERT INTO engine_steprun (run_id, node_id, node_type, queue, status, attempt, generation,
                remaining_upstream, upstream_succeeded, upstream_failed, upstream_skipped, error, waiting_reason,
                worker, queued_at, lease_expires_at)
            SELECT %s, 'x' || i, 'noop', 'default', CASE WHEN i %% 1000 = 0 THEN 'running' ELSE 'succeeded' END,
                1, 0, 0, 0, 0, 0, '', '', '', now(), now()
            FROM generate_series(1, 5000) AS i""", [run.pk])
        cur.execute("ANALYZE engine_steprun")
    one_statement = {"run": run.pk, "run_running": "running", "seq": 2, "first": 3, "lease": 30, "worker": "w",
                     "at": "2026-01-01T00:00:00Z", "events": "[]", "n_events": 1, "unfinished": 0,
                     "relaxed": "relaxed"}
    statements = {
        "claim": (CLAIM_SQL.sql, {"lease": 30, "queued": "queued", "running": "running", "id": step.pk,
                                  "attempt": 1, "worker": "w"}),
        "success": (transitions.STEPS_SUCCEED.sql, {
            "items": f'[{{"id": {step.pk}, "attempt": 1, "output": null, "logs": [], "metrics": {{}}, '
                     '"ago_start": 0, "ago_end": 0}]', "running": "running", "succeeded": "succeeded",
            "pending": "pending", "edges": "[]", "run": run.pk}),
        "claim in one statement": (hotpath._CLAIM.sql, {
            **one_statement, "id": step.pk, "queued": "queued", "running": "running", "attempt": 1}),
        "chained success in one statement": (hotpath._CHAIN.sql, {
            **one_statement, "step": step.pk, "running": "running", "attempt": 1, "next_node": "s2",
            "pending": "pending", "succeeded": "succeeded", "output": "{}", "ago_start": 0.0, "ago_end": 0.0,
            "logs": "[]", "metrics": "{}"}),
        "last step's success in one statement": (hotpath._FINISH.sql, {
            **one_statement, "step": step.pk, "running": "running", "attempt": 1, "failed": "failed",
            "upstream_failed": "upstream_failed", "output": "{}", "ago_start": 0.0, "ago_end": 0.0, "logs": "[]",
            "metrics": "{}", "sinks": '["s3"]',
            "node": "s3", "succeeded": "succeeded", "run_succeeded": "succeeded"}),
        "release": (transitions.RELEASE.sql, {"ids": [step.pk], "attempts": [1], "running": "running",
                                              "queued": "queued"}),
        "heartbeat": (liveness.SQL["heartbeat"].sql, {"lease": 30, "step": step.pk, "attempt": 1,
                                                       "running": "running"}),
        "journal": (journal.JOURNAL_START.sql, {"step": step.pk, "key": "k", "position": 0, "safe": False,
                                                "attempt": 1, "running": "running", "started": "started"}),
        "relaxed journal": (journal.JOURNAL_START_RELAXED.sql, {
            "step": step.pk, "key": "k", "position": 0, "safe": True, "attempt": 1, "running": "running",
            "started": "started"}),
    }
    for name, (sql, params) in statements.items():
        plan = _generic_plan(sql, params)
        assert not [index for index in PARTIAL if index in plan], f"{name} reads a partial index:\n{plan}"


def test_queue_picks_choose_their_rows_once_whatever_the_statistics_say():
    """The broker's dequeue and a fan-out's claim of its queued siblings pick their rows in a subquery. As
    "id IN (SELECT ...)", with statistics taken while the broker table was empty (a queue that usually is),
    the planner re-ran the subquery for every message of every queue: 1.2 s a poll with 1,000 messages."""
    from django.db import connection
    from django_q.signing import SignedPackage

    from engine.core.broker import DEQUEUE
    from engine.core.runtx import CLAIM_NEXT_SQL

    with connection.cursor() as cur:
        cur.execute("ANALYZE django_q_ormq")  # empty
        cur.execute("INSERT INTO django_q_ormq (key, payload, lock) SELECT 'default', %s, now() "
                    "FROM generate_series(1, 2000)", [SignedPackage.dumps({"func": "x"})])
        cur.execute(f"EXPLAIN {DEQUEUE.sql}", {"visibility": 30, "key": "fast", "bulk": 1})
        dequeue = "\n".join(row[0] for row in cur.fetchall())
    run, _ = run_start(workflow=workflow_save(definition=chain("plans-next", 2))[0])
    claim_next = _generic_plan(CLAIM_NEXT_SQL.sql, {"lease": 30, "running": "running", "worker": "w", "run": run.pk,
                                                    "queue": "default", "n": 4})
    for name, plan in (("dequeue", dequeue), ("claim of queued siblings", claim_next)):
        assert "InitPlan" in plan and "Semi Join" not in plan, f"{name}:\n{plan}"


def test_claims_drop_their_broker_messages_through_the_primary_key_whatever_the_statistics_say():
    """A claim deletes its steps' broker messages by id. While the queue's index ended with the id, the generic
    plans made with the statistics of an empty broker table could read that index whole to find the ids: every
    entry of the queue, dead ones included until a vacuum, on every claim (3.6 ms of a fan-out's 4.3 ms claim of
    32 siblings with 1,000 messages queued). Which index the planner took depended on the two indexes' sizes."""
    from django_q.signing import SignedPackage

    from engine.core.runtx import CLAIM_NEXT_SQL

    fill = ("INSERT INTO django_q_ormq (key, payload, lock) SELECT 'default', %s, now() "
            "FROM generate_series(1, 1000)")
    payload = [SignedPackage.dumps({"func": "x"})]
    with connection.cursor() as cur:  # 30,000 messages through the queue since a vacuum, analyzed while empty
        for _ in range(30):
            cur.execute(fill, payload)
            cur.execute("DELETE FROM django_q_ormq")
        cur.execute("ANALYZE django_q_ormq")
        cur.execute(fill, payload)
    run, _ = run_start(workflow=workflow_save(definition=chain("plans-drop", 2))[0])
    step = run.steps.get(node_id="s1")
    claims = {
        "claim": (CLAIM_SQL.sql, {"lease": 30, "queued": "queued", "running": "running", "id": step.pk,
                                  "attempt": 1, "worker": "w"}),
        "claim of queued siblings": (CLAIM_NEXT_SQL.sql, {"lease": 30, "running": "running", "worker": "w",
                                                           "run": run.pk, "queue": "default", "n": 32}),
        "claim in one statement": (hotpath._CLAIM.sql, {
            "run": run.pk, "run_running": "running", "seq": 2, "first": 3, "lease": 30, "worker": "w",
            "at": "2026-01-01T00:00:00Z", "events": "[]", "n_events": 1, "unfinished": 0, "relaxed": "relaxed",
            "id": step.pk, "queued": "queued", "running": "running", "attempt": 1}),
    }
    for name, (sql, params) in claims.items():
        plan = _generic_plan(sql, params)
        assert "django_q_ormq_pkey" in plan and "weft_ormq_key_rank" not in plan, f"{name}:\n{plan}"


def test_the_channel_layer_rows_read_the_group_key_index_not_every_membership():
    from django.utils import timezone

    from engine.core.events import MESSAGES_INSERT

    with connection.cursor() as cur:  # 3,000 websocket memberships of other runs' groups
        cur.execute("INSERT INTO channels_postgres_groupchannel (group_key, channel, expire) "
                    "SELECT 'asgi:group:run.' || i, 'specific.' || i, now() + interval '1 day' "
                    "FROM generate_series(1, 3000) AS i")
        cur.execute("ANALYZE channels_postgres_groupchannel")
    typed = (MESSAGES_INSERT.sql.replace("%(message)s", "%(message)s::bytea")  # typed, as psycopg sends them
             .replace("%(expire)s", "%(expire)s::timestamptz"))
    plan = _generic_plan(typed, {"message": b"m", "expire": timezone.now(),
                                               "groups": '["asgi:group:run.x", "asgi:group:runs"]'})
    assert "weft_groupchannel_group_key" in plan, plan
