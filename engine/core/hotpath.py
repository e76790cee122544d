"""Weft's four commonest transitions, each in one statement instead of a transaction of several.

- A run's start (the run row, its steps, its first steps queued with their broker messages, its events) takes
  BEGIN, the run's insert, the steps', the queueing, the broker rows, the events and the run row, COMMIT in
  ``scheduler.run_start``: seven round trips. Here it is two: the ids of the steps and messages are drawn from
  their sequences first (which writes nothing that needs a commit), then one statement inserts everything.
  It applies when no first step is inline (those run in the run's first transaction).
- A delivered step's claim (``queued -> running``, its Attempt row, its broker message dropped, its event)
  takes BEGIN, the run lock, the claim, the event and the run row, COMMIT in ``RunTx``: five round trips.
- A chained step's success, when the one step after it has no other upstream, runs on the same queue and is
  not inline (the step succeeds, the continuing worker claims its successor) takes six: BEGIN, the run lock,
  the success, the successor's claim, the events and the run row, COMMIT.
- A run's last step's success, when the step is a sink and no step of the run failed (the step succeeds, and
  so does the run, with its sinks' outputs) takes six too: BEGIN, the run lock, the success, the read of the
  sinks' outputs and the failed steps, the events and the run row, COMMIT.

Here each is one statement, so one round trip: outside a transaction it commits by itself (synchronous_commit
as configured), inside one it is part of it. Everything it writes is what ``RunTx`` and ``outcomes`` write for
the same transition: the same compare-and-sets, Attempt rows, events with the next sequence numbers, run
counters and channel-layer rows.

Each statement on a running run locks the run row first, and does anything only if the run is still running
and its last sequence number is the one the worker saw (no other transition happened in between, so the
statement knows the event numbers), and every compare-and-set in it wins: for the chained success, the
successor is pending, never attempted and waits for this step alone; for the run's last step, the step is the
only one unfinished, no step failed and the run is not a child run (whose parent settles when it finishes).
Otherwise it writes nothing and returns no row, and the caller takes the general path.
"""

from __future__ import annotations

import json

from django.conf import settings

from engine.core.dbretry import prepared_cursor
from engine.core.events import EVENTS_INSERT_SQL, MESSAGES_INSERT_SQL, EventBatch, PendingEvent
from engine.core.inline import is_inline
from engine.core.queues import Delivery, delivery_payloads, notify_channels
from engine.core.readiness import RUN, trigger_decision
from engine.core.runtx import _ATTEMPT_INSERT, _CLAIM_RETURNING, _CLAIM_SET, CLAIM_WHERE, _claimed_step
from engine.models import Run, StepRun
from engine.observability.tracing import trace_finished
from engine.states import RunStatus, StepStatus

# The run row, locked, if it is running and its last event is still %(seq)s: every statement here starts with it.
# (Its id is run_pk, so that a claim's "id" names the step's.)
_RUN_LOCK = """
WITH r AS (
    SELECT id AS run_pk, version_id, inputs::text FROM engine_run WHERE id = %(run)s AND status = %(run_running)s
        AND last_seq = %(seq)s
    FOR NO KEY UPDATE
)"""


def _events(cte: str, *, sets: str = "") -> str:
    """The events of a transition whose compare-and-set CTE is ``cte``, and the run row's counters (and ``sets``)."""
    return """, e AS (
    """ + EVENTS_INSERT_SQL + f""", {cte}
), u AS (
    UPDATE engine_run SET last_seq = %(seq)s + %(n_events)s, unfinished_steps = unfinished_steps + %(unfinished)s{
        ", " + sets if sets else ""}
    FROM {cte} WHERE engine_run.id = %(run)s
)"""

# With the channels-postgres layer, the layer's rows go in with the events (its trigger NOTIFYs at commit).
_SEND = """, m AS (
    """ + MESSAGES_INSERT_SQL + """ AND EXISTS (SELECT 1 FROM {cte})
)"""

# The claim of runtx.CLAIM_SQL, once the run is locked.
_CLAIM_SQL = _RUN_LOCK + ", c AS (" + _CLAIM_SET + "FROM r " + CLAIM_WHERE + _CLAIM_RETURNING + """
), a AS ({attempts}
), b AS (
    DELETE FROM django_q_ormq WHERE id = ANY(ARRAY(SELECT broker_msg_id FROM c))
)""".replace("{attempts}", _ATTEMPT_INSERT.format(cte="c")) + _events("c") + """{send}
SELECT c.id, c.run_id, c.node_id, c.node_type, c.queue, c.attempt, c.generation, c.queued_at, r.version_id, r.inputs
FROM c, r
"""

# The step's success and its Attempt row's, once {guard} (a CTE of the statement) holds a row.
_SUCCESS = """, s AS (
    UPDATE engine_steprun t SET status = 'succeeded', output = %(output)s::jsonb, error = '', lease_expires_at = NULL,
        waiting_reason = '', waiting_detail = NULL, wake_at = NULL,
        started_at = statement_timestamp() - make_interval(secs => %(ago_start)s),
        finished_at = statement_timestamp() - make_interval(secs => %(ago_end)s)
    FROM {guard} WHERE t.id = %(step)s AND t.status = %(running)s AND t.attempt = %(attempt)s
    RETURNING t.id, t.started_at, t.finished_at
), a AS (
    UPDATE engine_attempt x SET started_at = s.started_at, finished_at = s.finished_at, outcome = 'succeeded',
        error = '', error_type = '', traceback = '', logs = %(logs)s::jsonb, metrics = %(metrics)s::jsonb
    FROM s WHERE x.step_id = s.id AND x.number = %(attempt)s
)"""

_CHAIN_SQL = _RUN_LOCK + """, n AS (
    SELECT t.id FROM engine_steprun t, r
    WHERE t.run_id = %(run)s AND t.node_id = %(next_node)s AND t.status = %(pending)s AND t.attempt = 0
        AND t.remaining_upstream = 1 AND t.upstream_failed = 0 AND t.upstream_skipped = 0
    FOR UPDATE OF t
)""" + _SUCCESS.replace("{guard}", "n") + """, q AS (
    UPDATE engine_steprun t SET status = 'running', attempt = 1, remaining_upstream = remaining_upstream - 1,
        upstream_succeeded = upstream_succeeded + 1, queued_at = now(), next_attempt_at = NULL, finished_at = NULL,
        broker_msg_id = NULL, lease_expires_at = statement_timestamp() + make_interval(secs => %(lease)s),
        heartbeat_at = statement_timestamp(), started_at = statement_timestamp(), worker = %(worker)s
    FROM s, n WHERE t.id = n.id
    RETURNING t.id, t.run_id, t.node_id, t.node_type, t.queue, t.attempt, t.generation, t.queued_at
), qa AS ({attempts}
)""".replace("{attempts}", _ATTEMPT_INSERT.format(cte="q")) + _events("s") + """{send}
SELECT * FROM q
"""

# The run's last step: the run row is locked only if this step is its one unfinished step, no step failed and
# the run has no parent step; the run succeeds with the outputs of its sinks (this step's among them).
_FINISH_SQL = _RUN_LOCK.replace("AND last_seq = %(seq)s", """AND last_seq = %(seq)s AND unfinished_steps = 1
        AND parent_step_id IS NULL
        AND NOT EXISTS (SELECT 1 FROM engine_steprun b WHERE b.run_id = %(run)s
                        AND b.status IN (%(failed)s, %(upstream_failed)s))""") \
    + _SUCCESS.replace("{guard}", "r") + """, o AS (
    SELECT jsonb_object_agg(x.node_id, x.output) AS outputs FROM (
        SELECT t.node_id, t.output FROM engine_steprun t, s
        WHERE t.run_id = %(run)s AND t.node_id = ANY(ARRAY(SELECT jsonb_array_elements_text(%(sinks)s::jsonb)))
            AND t.node_id <> %(node)s::text
            AND t.status = %(succeeded)s
        UNION ALL
        SELECT %(node)s::text, %(output)s::jsonb FROM s
    ) x
)""" + _events("s", sets="""status = %(run_succeeded)s,
        finished_at = statement_timestamp(), outputs = (SELECT outputs FROM o), error = ''""") + """{send}
SELECT id FROM s
"""


# The ids of a new run's steps and of its first steps' broker messages. Sequences are not transactional: drawing
# numbers assigns no transaction id, so this commits (and flushes) nothing.
_START_IDS_SQL = """
WITH q AS MATERIALIZED (
    SELECT pg_get_serial_sequence('engine_steprun', 'id')::regclass AS steps,
        pg_get_serial_sequence('django_q_ormq', 'id')::regclass AS messages
)
SELECT ARRAY(SELECT nextval(q.steps) FROM q, generate_series(1, %(steps)s) ORDER BY 1),
    ARRAY(SELECT nextval(q.messages) FROM q, generate_series(1, %(messages)s) ORDER BY 1)
FROM q
"""

# A new run, running, with its steps (%(steps)s: {id, node_id, node_type, queue, upstream} and, for a first step,
# its broker message's id and payload, "msg" and "payload": it is queued with attempt 1), the broker messages, the
# events, and a NOTIFY for each queue of a first step (sent at commit). Lists come as JSON (see
# events.MESSAGES_INSERT_SQL). What run_start writes through Run.objects.create,
# _STEPS_INSERT_SQL, RunTx.queue_ready, queues.enqueue and RunTx's events.
_START_SQL = """
WITH r AS (
    INSERT INTO engine_run (id, workflow_id, version_id, status, inputs, outputs, error, idempotency_key,
        request_hash, unfinished_steps, last_seq, parent_step_id, created_by_id, created_at, started_at, finished_at)
    VALUES (%(run)s, %(workflow)s, %(version)s, %(run_running)s, %(inputs)s::jsonb, NULL, '', %(key)s, %(hash)s,
        %(unfinished)s, %(n_events)s, %(parent)s, %(created_by)s, %(created_at)s, statement_timestamp(), NULL)
    RETURNING id, started_at
), v AS (
    SELECT x FROM jsonb_array_elements(%(steps)s::jsonb) AS x
), s AS (
    INSERT INTO engine_steprun (id, run_id, node_id, node_type, queue, status, attempt, generation,
        remaining_upstream, upstream_succeeded, upstream_failed, upstream_skipped, error, waiting_reason, worker,
        queued_at, broker_msg_id)
    SELECT (x->>'id')::bigint, r.id, x->>'node_id', x->>'node_type', x->>'queue',
        CASE WHEN x ? 'msg' THEN %(queued)s ELSE %(pending)s END, CASE WHEN x ? 'msg' THEN 1 ELSE 0 END, 0,
        (x->>'upstream')::int, 0, 0, 0, '', '', '', CASE WHEN x ? 'msg' THEN now() END, (x->>'msg')::bigint
    FROM r, v
), b AS (
    INSERT INTO django_q_ormq (id, key, payload, lock)
    SELECT (x->>'msg')::bigint, x->>'queue', x->>'payload', statement_timestamp()
    FROM r, v WHERE x ? 'msg'
), e AS (
    """ + EVENTS_INSERT_SQL + """, r
){send}
SELECT r.started_at, (SELECT count(pg_notify(c, '')) FROM jsonb_array_elements_text(%(channels)s::jsonb) AS c) FROM r
"""


def _statements(sql: str, cte: str) -> tuple[str, str]:
    """``sql`` without and with the channel-layer rows."""
    return sql.replace("{send}", ""), sql.replace("{send}", _SEND.replace("{cte}", cte))


_START_SQL, _START_SEND_SQL = _statements(_START_SQL, "r")
_CLAIM_SQL, _CLAIM_SEND_SQL = _statements(_CLAIM_SQL, "c")
_CHAIN_SQL, _CHAIN_SEND_SQL = _statements(_CHAIN_SQL, "s")
_FINISH_SQL, _FINISH_SEND_SQL = _statements(_FINISH_SQL, "s")


def run_start_one(run: Run, graph, steps: list[dict], *, actor: str) -> Run:
    """Insert ``run`` (a new Run, unsaved) as running, its ``steps`` (scheduler._new_steps: one per node of
    ``graph``), its first steps queued with a broker message each, and its first events, in one statement (after
    drawing the ids). Returns ``run`` as saved. The caller checks that no first step is inline."""
    roots = set(graph.roots())
    with prepared_cursor() as cur:
        cur.execute(_START_IDS_SQL, {"steps": len(steps), "messages": len(roots)})
        step_ids, message_ids = cur.fetchone()
    steps = [{**step, "id": step_id} for step, step_id in zip(steps, step_ids, strict=True)]
    first = [step for step in steps if step["node_id"] in roots]
    deliveries = [Delivery(str(run.pk), step["id"], 1, step["queue"]) for step in first]
    for step, message_id, payload in zip(first, message_ids, delivery_payloads(deliveries), strict=True):
        step["msg"], step["payload"] = message_id, payload
    pending = [PendingEvent(f"run.{RunStatus.RUNNING}", "", {}, actor),
               *[PendingEvent("step.queued", step["node_id"], {"from": StepStatus.PENDING, "attempt": 1}, actor)
                 for step in first]]
    batch = EventBatch(run.pk, 1, pending)
    run.created_at = batch.at
    with prepared_cursor() as cur:
        cur.execute(_START_SQL if batch.send is None else _START_SEND_SQL, {
            **batch.params(), "run": run.pk, "workflow": run.workflow_id, "version": run.version_id,
            "run_running": RunStatus.RUNNING, "inputs": json.dumps(run.inputs), "key": run.idempotency_key,
            "hash": run.request_hash, "unfinished": len(steps), "n_events": len(pending),
            "parent": run.parent_step_id, "created_by": run.created_by_id, "created_at": run.created_at,
            "steps": json.dumps(steps), "queued": StepStatus.QUEUED, "pending": StepStatus.PENDING,
            "channels": json.dumps(notify_channels(deliveries))})
        run.started_at = cur.fetchone()[0]
    batch.publish_on_commit()
    run.status, run.unfinished_steps, run.last_seq = RunStatus.RUNNING, len(steps), len(pending)
    run._state.adding = False
    run._state.db = "default"
    return run


def step_claim_one(*, run_id, seq: int, step_id: int, node_id: str, attempt: int,
                   worker: str) -> tuple[StepRun, int, dict, int] | None:
    """Claim ``attempt`` of step ``step_id`` for ``worker`` in one statement, if the run's last sequence number
    is still ``seq`` (see the module docstring). Returns the claimed step, the run's version id and inputs, and
    the run's last sequence number after the statement; None if nothing was written."""
    pending = [PendingEvent("step.running", node_id, {"from": StepStatus.QUEUED, "attempt": attempt,
                                                      "worker": worker})]
    written = _execute(_CLAIM_SQL, _CLAIM_SEND_SQL, run_id=run_id, seq=seq, pending=pending, unfinished=0, params={
        "id": step_id, "queued": StepStatus.QUEUED, "attempt": attempt, "lease": settings.WEFT_LEASE_S,
        "worker": worker})
    if written is None:
        return None
    (*claimed, version_id, inputs), last_seq = written
    return _claimed_step(tuple(claimed), worker=worker), version_id, json.loads(inputs), last_seq


def chain_successor(graph, node_id: str, *, queue: str) -> str | None:
    """The step a success of ``node_id`` makes ready for a worker on ``queue`` to claim in one statement: its
    only successor, through a plain edge (no condition, no branch), with no other upstream, on the same queue,
    not inline, and run by its trigger rule when its one upstream succeeded. None if there is no such step."""
    edges = graph.out_edges(node_id)
    if len(edges) != 1 or edges[0].condition or edges[0].branch is not None:
        return None
    target = graph.nodes[edges[0].target]
    if (target.queue != queue or len(graph.in_edges(target.id)) != 1 or is_inline(target.type)
            or trigger_decision(target.trigger_rule, succeeded=1, failed=0, skipped=0) != RUN):
        return None
    return target.id


def chain_step_record(*, run_id, seq: int, step_id: int, node_id: str, attempt: int, next_node_id: str, output,
                      attempt_row: dict, worker: str) -> tuple[StepRun, int] | None:
    """Record ``attempt`` of step ``step_id`` as succeeded and claim the step of ``next_node_id`` for ``worker``, in one
    statement, if the run's last sequence number is still ``seq`` (see the module docstring). Returns the
    claimed successor, running, and the run's last sequence number after the statement; None if nothing was
    written."""
    pending = [PendingEvent("step.succeeded", node_id, {"from": StepStatus.RUNNING}),
               PendingEvent("step.queued", next_node_id, {"from": StepStatus.PENDING, "attempt": 1}),
               PendingEvent("step.running", next_node_id, {"from": StepStatus.QUEUED, "attempt": 1, "worker": worker})]
    written = _execute(_CHAIN_SQL, _CHAIN_SEND_SQL, run_id=run_id, seq=seq, pending=pending, unfinished=-1, params={
        **_success_params(step_id, attempt, output, attempt_row), "next_node": next_node_id,
        "pending": StepStatus.PENDING, "lease": settings.WEFT_LEASE_S, "worker": worker})
    if written is None:
        return None
    row, last_seq = written
    return _claimed_step(row, worker=worker), last_seq


def finishes_run(graph, node_id: str) -> bool:
    """Whether a success of ``node_id`` may be the one that finishes its run in one statement: it is a sink (the
    statement itself checks that it is the run's last unfinished step and that no step failed)."""
    return not graph.out_edges(node_id)


def finish_step_record(*, run_id, seq: int, step_id: int, node_id: str, attempt: int, output, attempt_row: dict,
                       sinks: list[str]) -> int | None:
    """Record ``attempt`` of step ``step_id`` as succeeded, and its run as succeeded with the outputs of its
    ``sinks``, in one statement, if the step is the run's last unfinished one, no step of the run failed, the run
    has no parent step and its last sequence number is still ``seq`` (see the module docstring). Returns the
    run's last sequence number after the statement; None if nothing was written."""
    pending = [PendingEvent("step.succeeded", node_id, {"from": StepStatus.RUNNING}),
               PendingEvent(f"run.{RunStatus.SUCCEEDED}", "", {"error": ""})]
    written = _execute(_FINISH_SQL, _FINISH_SEND_SQL, run_id=run_id, seq=seq, pending=pending, unfinished=-1, params={
        **_success_params(step_id, attempt, output, attempt_row), "node": node_id, "sinks": json.dumps(sinks),
        "failed": StepStatus.FAILED, "upstream_failed": StepStatus.UPSTREAM_FAILED, "succeeded": StepStatus.SUCCEEDED,
        "run_succeeded": RunStatus.SUCCEEDED})
    return None if written is None else written[1]


def _success_params(step_id: int, attempt: int, output, attempt_row: dict) -> dict:
    """The parameters of _SUCCESS: the step's compare-and-set, its output, its Attempt row's logs, metrics, times."""
    return {"step": step_id, "running": StepStatus.RUNNING, "attempt": attempt, "output": json.dumps(output),
            "ago_start": float(attempt_row.get("ago_start", 0.0)), "ago_end": float(attempt_row.get("ago_end", 0.0)),
            "logs": json.dumps(attempt_row["logs"]), "metrics": json.dumps(attempt_row["metrics"])}


def _execute(sql: str, send_sql: str, *, run_id, seq: int, pending: list[PendingEvent], unfinished: int,
             params: dict) -> tuple[tuple, int] | None:
    """Run one of the statements with its events as seq + 1, seq + 2, ..., and publish them once it commits.
    Returns its row and the run's last sequence number after it (its last event's), or None if it wrote
    nothing."""
    batch = EventBatch(run_id, seq + 1, pending)
    with prepared_cursor() as cur:
        cur.execute(sql if batch.send is None else send_sql, {
            **params, **batch.params(), "run": run_id, "seq": seq, "run_running": RunStatus.RUNNING,
            "n_events": len(pending), "unfinished": unfinished})
        row = cur.fetchone()
    if row is None:
        return None
    batch.publish_on_commit()
    trace_finished(run_id, pending)  # spans of the steps that finished, as RunTx exports them
    return row, seq + len(pending)
