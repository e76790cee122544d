"""Weft's four commonest transitions, each in one statement instead of a transaction of several.

- A run's start (the run row, its steps, its first steps queued with their broker messages, its events) takes
  BEGIN, the run's insert, the steps', the queueing, the broker rows, the events and the run row, COMMIT in
  ``engine.services.scheduler.run_start``: seven round trips. Here it is two: the ids of the steps and messages
  are drawn from their sequences first (which writes nothing that needs a commit), then one statement inserts
  everything.
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
as configured, or off for a relaxed run's claim and successes: the run lock turns it off for that statement's
transaction when the run row says relaxed, engine.core.durability), inside one it is part of it. A run's start
is always strict. Everything it writes is what ``RunTx`` and engine.core.outcomes
write for the same transition: the same compare-and-sets, Attempt rows, events with the next sequence numbers,
run counters and channel-layer rows.

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

from engine.core import transitions
from engine.core.dbretry import prepared_cursor
from engine.core.durability import COMMIT_RELAXED_IF_RUN, RELAXED_PARAMS
from engine.core.events import EVENTS_INSERT, MESSAGES_INSERT, EventBatch, PendingEvent
from engine.core.inline import is_inline
from engine.core.queues import Delivery, aging_s, delivery_payloads, notify_channels, step_priority
from engine.core.readiness import RUN, trigger_decision
from engine.core.transitions import Bound
from engine.models import Run, StepRun
from engine.observability.tracing import trace_finished
from engine.statements import compose, load
from engine.states import RunStatus, StepStatus

_SQL = load(__file__, "sql/hotpath.sql")
T = transitions.TRANSITION_SQL


def _statements(name: str, *, messages: str, **parts) -> tuple[Bound, Bound]:
    """The statement ``name`` of hotpath.sql, its slots filled with ``parts`` and the events' piece, without and
    with the channel layer's rows (the piece ``messages``, which says which CTE must have written a row)."""
    sends = ("", compose(_SQL[messages], messages_insert=MESSAGES_INSERT))
    return tuple(Bound(compose(_SQL[name], events_insert=EVENTS_INSERT, send=send, **parts)) for send in sends)


_RUN_LOCK = compose(_SQL["run_lock"], last_step="", durability=COMMIT_RELAXED_IF_RUN)
_RUN_LOCK_LAST_STEP = compose(_SQL["run_lock"], last_step=_SQL["run_lock_last_step"], durability=COMMIT_RELAXED_IF_RUN)
_SUCCESS = {"step_succeed": T["step_succeed"], "attempt_succeed": T["attempt_succeed"]}

_START_IDS = Bound(_SQL["start_ids"])
_START, _START_SEND = _statements("start_one", messages="messages_if_started")
_CLAIM, _CLAIM_SEND = _statements(
    "claim_one", messages="messages_if_claimed", run_lock=_RUN_LOCK, attempt_start=transitions.ATTEMPT_START,
    step_claim=compose(T["step_claim"], claim_set=T["claim_set"], guard=_SQL["run_locked"]))
_CHAIN, _CHAIN_SEND = _statements(
    "chain_one", messages="messages_if_succeeded", run_lock=_RUN_LOCK, **_SUCCESS,
    successor_claim=T["successor_claim"], attempt_start=transitions.ATTEMPT_START)
_FINISH, _FINISH_SEND = _statements(
    "finish_one", messages="messages_if_succeeded", run_lock=_RUN_LOCK_LAST_STEP, **_SUCCESS,
    run_succeed_set=T["run_succeed_set"])


def run_start_one(run: Run, graph, steps: list[dict], *, actor: str) -> Run:
    """Insert ``run`` (a new Run, unsaved) as running, its ``steps`` (scheduler._new_steps: one per node of
    ``graph``), its first steps queued with a broker message each, and its first events, in one statement (after
    drawing the ids). Returns ``run`` as saved. The caller checks that no first step is inline."""
    roots = set(graph.roots())
    with prepared_cursor() as cur:
        cur.execute(_START_IDS.sql, _START_IDS.params({"steps": len(steps), "messages": len(roots)}))
        step_ids, message_ids = cur.fetchone()
    steps = [{**step, "id": step_id} for step, step_id in zip(steps, step_ids, strict=True)]
    first = [step for step in steps if step["node_id"] in roots]
    deliveries = [Delivery(str(run.pk), step["id"], 1, step["queue"],
                           step_priority(run.priority, graph.node(step["node_id"]).priority)) for step in first]
    for step, delivery, message_id, payload in zip(first, deliveries, message_ids, delivery_payloads(deliveries),
                                                   strict=True):
        step["msg"], step["payload"], step["priority"] = message_id, payload, delivery.priority
    pending = [PendingEvent(f"run.{RunStatus.RUNNING}", "", {}, actor),
               *[PendingEvent("step.queued", step["node_id"], {"from": StepStatus.PENDING, "attempt": 1}, actor)
                 for step in first]]
    batch = EventBatch(run.pk, 1, pending)
    run.created_at = batch.at
    start = _START if batch.send is None else _START_SEND
    with prepared_cursor() as cur:
        cur.execute(start.sql, start.params({
            **batch.params(), "run": run.pk, "workflow": run.workflow_id, "version": run.version_id,
            "inputs": json.dumps(run.inputs), "key": run.idempotency_key,
            "hash": run.request_hash, "unfinished": len(steps), "n_events": len(pending),
            "parent": run.parent_step_id, "created_by": run.created_by_id, "trigger": json.dumps(run.trigger),
            "created_at": run.created_at, "durability": run.durability, "priority": run.priority,
            "aging": aging_s(),
            "steps": json.dumps(steps), "channels": json.dumps(notify_channels(deliveries))}))
        run.started_at = cur.fetchone()[0]
    batch.publish_on_commit()
    run.status, run.unfinished_steps, run.last_seq = RunStatus.RUNNING, len(steps), len(pending)
    run._state.adding = False
    run._state.db = "default"
    return run


def step_claim_one(*, run_id, seq: int, step_id: int, node_id: str, attempt: int,
                   worker: str) -> tuple[StepRun, int, dict, str, int] | None:
    """Claim ``attempt`` of step ``step_id`` for ``worker`` in one statement, if the run's last sequence number
    is still ``seq`` (see the module docstring). Returns the claimed step, the run's version id, inputs and
    durability, and the run's last sequence number after the statement; None if nothing was written."""
    pending = [PendingEvent("step.running", node_id, {"from": StepStatus.QUEUED, "attempt": attempt,
                                                      "worker": worker})]
    written = _execute(_CLAIM, _CLAIM_SEND, run_id=run_id, seq=seq, pending=pending, unfinished=0, params={
        "id": step_id, "attempt": attempt, "lease": settings.WEFT_LEASE_S, "worker": worker})
    if written is None:
        return None
    (*claimed, version_id, inputs, durability), last_seq = written
    return (transitions.claimed_step(tuple(claimed), worker=worker), version_id, json.loads(inputs), durability,
            last_seq)


def chain_successor(graph, node_id: str, *, queue: str) -> str | None:
    """The step a success of ``node_id`` makes ready for a worker on ``queue`` to claim in one statement: its
    only successor, through a plain edge (no condition, no branch), with no other upstream, on the same queue,
    not inline, not mapped, taking no limit (it waits for admission), and run by its trigger rule when its one
    upstream succeeded. None if there is no such step."""
    edges = graph.out_edges(node_id)
    if len(edges) != 1 or edges[0].condition or edges[0].branch is not None:
        return None
    target = graph.nodes[edges[0].target]
    if (target.queue != queue or len(graph.in_edges(target.id)) != 1 or is_inline(target.type) or target.limits
            or target.for_each is not None
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
    written = _execute(_CHAIN, _CHAIN_SEND, run_id=run_id, seq=seq, pending=pending, unfinished=-1, params={
        **_success_params(step_id, attempt, output, attempt_row), "next_node": next_node_id,
        "lease": settings.WEFT_LEASE_S, "worker": worker})
    if written is None:
        return None
    row, last_seq = written
    return transitions.claimed_step(row, worker=worker), last_seq


def finishes_run(graph, node_id: str) -> bool:
    """Whether a success of ``node_id`` may be the one that finishes its run in one statement: it is a sink (the
    statement itself checks that it is the run's last unfinished step and that no step failed), and its workflow
    does not queue runs over a concurrency limit (that finish starts the next run: ``RunTx`` does it)."""
    return not graph.out_edges(node_id) and (graph.concurrency is None or not graph.concurrency.queues)


def finish_step_record(*, run_id, seq: int, step_id: int, node_id: str, attempt: int, output, attempt_row: dict,
                       sinks: list[str]) -> int | None:
    """Record ``attempt`` of step ``step_id`` as succeeded, and its run as succeeded with the outputs of its
    ``sinks``, in one statement, if the step is the run's last unfinished one, no step of the run failed, the run
    has no parent step and its last sequence number is still ``seq`` (see the module docstring). Returns the
    run's last sequence number after the statement; None if nothing was written."""
    pending = [PendingEvent("step.succeeded", node_id, {"from": StepStatus.RUNNING}),
               PendingEvent(f"run.{RunStatus.SUCCEEDED}", "", {"error": ""})]
    written = _execute(_FINISH, _FINISH_SEND, run_id=run_id, seq=seq, pending=pending, unfinished=-1, params={
        **_success_params(step_id, attempt, output, attempt_row), "node": node_id,
        "sinks": json.dumps(sinks)})
    return None if written is None else written[1]


def _success_params(step_id: int, attempt: int, output, attempt_row: dict) -> dict:
    """The parameters of a success (the CTE v of chain_one and finish_one): the step's compare-and-set, its output,
    its Attempt row's logs, metrics and times."""
    return {"step": step_id, "attempt": attempt, "output": json.dumps(output),
            "ago_start": float(attempt_row.get("ago_start", 0.0)), "ago_end": float(attempt_row.get("ago_end", 0.0)),
            "logs": json.dumps(attempt_row["logs"]), "metrics": json.dumps(attempt_row["metrics"])}


def _execute(plain: Bound, send: Bound, *, run_id, seq: int, pending: list[PendingEvent], unfinished: int,
             params: dict) -> tuple[tuple, int] | None:
    """Run one of the statements with its events as seq + 1, seq + 2, ..., and publish them once it commits.
    Returns its row and the run's last sequence number after it (its last event's), or None if it wrote
    nothing."""
    batch = EventBatch(run_id, seq + 1, pending)
    statement = plain if batch.send is None else send
    with prepared_cursor() as cur:
        cur.execute(statement.sql, statement.params(params, batch.params(), RELAXED_PARAMS, {
            "run": run_id, "seq": seq, "n_events": len(pending), "unfinished": unfinished}))
        row = cur.fetchone()
    if row is None:
        return None
    batch.publish_on_commit()
    trace_finished(run_id, pending)  # spans of the steps that finished, as RunTx exports them
    return row, seq + len(pending)
