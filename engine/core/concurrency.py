"""Run concurrency: at most ``limit`` runs of a workflow with the same key running at once, whatever the number
of processes and hosts starting and finishing them (docs/limits.md, "Run concurrency").

A **group** is a workflow and a rendered key. Every decision on a group is taken under its transaction-scoped
advisory lock (``group_lock``) and counts what the database says:

- a run's start (engine.services.scheduler.run_start): it starts, waits (``queue``), is cancelled at once
  (``cancel_newest``) or cancels the group's earliest started runs (``cancel_in_progress``);
- the finish of a run whose strategy is ``queue``: ``RunTx`` calls ``_run_finished`` in the transaction that
  finished it (succeeded, failed or cancelled), which starts the oldest waiting runs that now fit;
- the recovery loop's heal (``runs_waiting_heal``): a waiting run whose group has room (after a crash).

``runs_admit`` is the one place that starts a waiting run. A waiting run is ``pending`` with its
``concurrency_key`` set: its steps exist, none is queued, it holds no worker.

Locks are taken in one order: a run's row, then its group's lock, then waiting runs' rows (passing over any
another transaction holds), so a finishing run and a starting one never wait for each other in a circle.
"""

from __future__ import annotations

import json

from django.db import connection, transaction
from django.db.models.functions import Now

from engine.core import runtx, transitions
from engine.core.outcomes import dispatch_ready
from engine.core.runtx import RunTx, StepRef
from engine.core.versions import version_graph
from engine.exceptions import InputsInvalid
from engine.models import StepRun
from engine.statements import compose, execute, load
from engine.states import RunStatus, StepStatus

REASON = "concurrency"
ACTOR = "concurrency"  # the actor of the starts a finish makes, and of cancel_in_progress's cancellations
MAX_KEY = 200
BATCH = 100

SQL = load(__file__, "sql/concurrency.sql")
_LOCK = SQL["group_lock"]
_RUNNING = transitions.Bound(SQL["group_running"])
_NEXT = transitions.Bound(SQL["group_next"])
WAITING_WITH_ROOM = SQL["run_waiting_with_room"]  # the recovery loop's anything_due asks it too
_GROUPS_WITH_ROOM = transitions.Bound(compose(SQL["groups_with_room"], run_waiting_with_room=WAITING_WITH_ROOM))
ROOM_PARAMS = {name: transitions.STATUS_PARAMS[name] for name in WAITING_WITH_ROOM.params}


def group_name(key: str) -> str:
    """A group as messages name it: ``key 'u1'``, or ``this workflow`` for a workflow without a key."""
    return f"key {key!r}" if key else "this workflow"


def key_render(spec, inputs: dict) -> str:
    """A run's concurrency key: ``spec.key`` rendered with the run's inputs. Raises InputsInvalid naming the field
    when the template fails (it names a missing input) or the key is longer than 200 characters."""
    if not spec.key:
        return ""
    from engine.templating import templates as templating

    try:
        value = templating.render(spec.key, {"inputs": inputs}, path="concurrency.key")
    except Exception as exc:  # noqa: BLE001 -- the template's own error, said in the answer
        problem = f"the workflow's concurrency key failed to render: {exc}"
        raise InputsInvalid(problem, details=[{"path": "concurrency.key", "message": problem}]) from None
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
    if len(text) > MAX_KEY:
        problem = f"the workflow's concurrency key rendered to {len(text)} characters; at most {MAX_KEY}"
        raise InputsInvalid(problem, details=[{"path": "concurrency.key", "message": problem}])
    return text


def group_lock(workflow_id: int, key: str) -> None:
    """Take the group's advisory lock until this transaction ends (held again by the same transaction: no-op)."""
    with connection.cursor() as cur:
        execute(cur, _LOCK, {"workflow": workflow_id, "key": key})


def group_running(workflow_id: int, key: str) -> list:
    """The ids of the group's running runs, the earliest started first."""
    with connection.cursor() as cur:
        cur.execute(_RUNNING.sql, _RUNNING.params({"workflow": workflow_id, "key": key}))
        return [row[0] for row in cur.fetchall()]


def run_begin(run_id, *, actor: str) -> bool:
    """Start a run created pending: ``pending -> running`` and its first steps made ready, in its own ``RunTx``.
    Returns False if the run was no longer pending."""
    with RunTx(run_id, actor=actor) as tx:
        if tx.run_status != RunStatus.PENDING:
            return False
        tx.run_set_status(RunStatus.RUNNING, started_at=Now())
        roots = tx.graph.roots()
        firsts = StepRun.objects.filter(run_id=tx.run.pk, node_id__in=roots, status=StepStatus.PENDING)
        dispatch_ready(tx, [StepRef(pk, node_id, StepStatus.PENDING, attempt)
                            for pk, node_id, attempt in firsts.values_list("id", "node_id", "attempt")])
    return True


def run_wait(run_id, *, actor: str) -> None:
    """A new run over its group's limit waits: a ``run.pending`` event says why (the run stays pending)."""
    with RunTx(run_id, actor=actor) as tx:
        tx.event(f"run.{RunStatus.PENDING}", reason=REASON, key=tx.run.concurrency_key)


def runs_admit(workflow_id: int, key: str, *, actor: str = ACTOR) -> list:
    """Start the group's oldest waiting runs while its running runs are fewer than the limit (that of the waiting
    run's version). The caller holds the group's lock. Returns the ids of the runs started."""
    started = []
    while True:
        running = len(group_running(workflow_id, key))
        with connection.cursor() as cur:
            cur.execute(_NEXT.sql, _NEXT.params({"workflow": workflow_id, "key": key}))
            row = cur.fetchone()
        if row is None:
            return started
        run_id, version_id = row
        spec = version_graph(version_id).concurrency
        if running >= (spec.limit if spec is not None else 1):
            return started
        if run_begin(run_id, actor=actor):
            started.append(run_id)


def runs_waiting_heal(*, batch: int = BATCH) -> int:
    """The recovery loop's pass: start the waiting runs whose group has room. A finish and its group's pass share
    a transaction, so a crash loses neither; this heals whatever else left room unused (a strategy or limit
    changed under waiting runs, a run moved to another version, a pass that passed over a run whose cancellation
    then rolled back). Returns how many runs it started."""
    with connection.cursor() as cur:
        cur.execute(_GROUPS_WITH_ROOM.sql, _GROUPS_WITH_ROOM.params({"batch": batch}))
        groups = cur.fetchall()
    started = 0
    for workflow_id, key in groups:
        with transaction.atomic():
            group_lock(workflow_id, key)
            started += len(runs_admit(workflow_id, key, actor="recovery"))
    return started


def _run_finished(tx: RunTx) -> None:
    """A run of a group finished (``RunTx`` calls this in its transaction, after writing the run's row): under a
    ``queue`` strategy, the group's oldest waiting runs start in the room it left."""
    spec = tx.graph.concurrency
    if spec is None or not spec.queues:
        return
    group_lock(tx.run.workflow_id, tx.run.concurrency_key)
    runs_admit(tx.run.workflow_id, tx.run.concurrency_key)


runtx.RUN_FINISHED.append(_run_finished)
