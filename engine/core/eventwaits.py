"""Steps that wait for an outside event (the ``wait_for_event`` node), and the events that wake them.

A waiting step has ``waiting_reason = "event"`` and ``waiting_detail = {"event": name, "key": key, ...}``.
Two paths meet, and neither may lose the other nor deliver twice:

- a step beginning to wait (``step_record_event_wait``, in its run's transaction) first looks for a stored
  event with that name and key, received since its run was created and within WEFT_EVENT_RETENTION_S, that
  no step of its run has received yet; if there is one, the step succeeds with its payload at once;
- an arriving event (engine.services.events) is stored and committed, then ``event_wake`` looks for the steps
  waiting for it and settles each in its run's transaction.

Both take the transaction-level advisory lock of (name, key) (``event_lock``) before they look, so whichever
comes second sees what the first committed: a step recorded as waiting before the event's transaction took
the lock is found by ``event_wake``; an event committed before the step took the lock is found by the step.
The event's side holds no run lock while it holds the (name, key) lock, so the two never deadlock. An
``EventDelivery`` row, unique per (step, attempt), and the compare-and-set on (waiting, attempt) make a step
take at most one event.
"""

from __future__ import annotations

from django.conf import settings
from django.db import IntegrityError, connection, transaction

from engine.core import outcomes
from engine.core.runtx import RunTx, StepRef
from engine.models import EventDelivery, OutsideEvent, StepRun
from engine.statements import compose, execute, load
from engine.states import StepStatus

REASON = "event"
SQL = load(__file__, "sql/eventwaits.sql")
EVENT_WAITS_DUE = compose(SQL["event_waits_due"], event_wait_due=SQL["event_wait_due"])


def event_lock(*, name: str, key: str) -> None:
    """Take the (name, key) lock for the current transaction."""
    with connection.cursor() as cur:
        execute(cur, SQL["event_lock"], {"name": name, "key": key})


def step_record_event_wait(tx: RunTx, step: StepRef, *, attempt: int, detail: dict,
                           wake_in: float | None) -> str | None:
    """Record that ``step`` (running, ``attempt``) waits for the event in ``detail``, or, when a matching
    event is already stored, let it succeed with that event's payload. Returns "waiting", "delivered", or
    None when the compare-and-set lost (the attempt was fenced out)."""
    if _stored_deliver(tx, step, attempt=attempt, name=detail["event"], key=detail["key"]):
        return "delivered"
    won = outcomes.step_record_wait(tx, step, attempt=attempt, reason=REASON, detail=detail, wake_in=wake_in)
    return "waiting" if won else None


def _stored_deliver(tx: RunTx, step: StepRef, *, attempt: int, name: str, key: str) -> bool:
    """Under the (name, key) lock, give ``step`` the oldest stored event it may receive; whether one was."""
    event_lock(name=name, key=key)
    with connection.cursor() as cur:
        execute(cur, SQL["event_stored"], {"name": name, "key": key, "since": tx.run.created_at, "run": tx.run.pk,
                                           "retention_s": float(settings.WEFT_EVENT_RETENTION_S)})
        row = cur.fetchone()
    if row is None:
        return False
    event_pk, event_id = row[0], row[1]
    payload = OutsideEvent.objects.filter(pk=event_pk).values_list("payload", flat=True).first()
    if not _delivery_record(event_pk, step.id, attempt):
        return False
    tx.event("step.event_received", step.node_id, event_id=event_id, name=name, key=key, stored=True)
    return outcomes.step_record_success(tx, step, attempt=attempt, output=payload)


def event_waits_recover(*, batch: int = 100) -> int:
    """Wake waiting steps whose event is stored but whose wake was lost (the sending process stopped between
    storing the event and waking them). For recovery; returns how many it woke."""
    with connection.cursor() as cur:
        execute(cur, EVENT_WAITS_DUE, {"event_reason": REASON, "batch": batch,
                                       "retention_s": float(settings.WEFT_EVENT_RETENTION_S)})
        due = cur.fetchall()
    woken = 0
    for run_id, step_id in due:
        with RunTx(run_id, actor="recovery") as tx:
            step = StepRun.objects.filter(pk=step_id, status=StepStatus.WAITING, waiting_reason=REASON).first()
            if step is None:
                continue
            detail = step.waiting_detail or {}
            ref = StepRef(step.id, step.node_id, step.status, step.attempt)
            woken += _stored_deliver(tx, ref, attempt=step.attempt, name=str(detail.get("event", "")),
                                     key=str(detail.get("key", "")))
    return woken


def _delivery_record(event_pk: int, step_id: int, attempt: int) -> bool:
    try:
        with transaction.atomic():
            EventDelivery.objects.create(event_id=event_pk, step_id=step_id, attempt=attempt)
    except IntegrityError:
        return False
    return True


def event_wake(event: OutsideEvent) -> list[dict]:
    """Settle every step waiting for ``event`` (stored and committed) with its payload. Call it outside any
    transaction, after the event's has committed. Returns [{"run", "step"}] of the steps it woke."""
    waiting = list(
        StepRun.objects.filter(status=StepStatus.WAITING, waiting_reason=REASON,
                               waiting_detail__event=event.name, waiting_detail__key=event.key)
        .order_by("id").values_list("run_id", "id")
    )
    woken = []
    for run_id, step_id in waiting:
        with RunTx(run_id, actor="event") as tx:
            step = StepRun.objects.filter(pk=step_id, status=StepStatus.WAITING, waiting_reason=REASON).first()
            if step is None or (step.waiting_detail or {}).get("event") != event.name \
                    or (step.waiting_detail or {}).get("key") != event.key:
                continue
            if not _delivery_record(event.pk, step.id, step.attempt):
                continue
            ref = StepRef(step.id, step.node_id, step.status, step.attempt)
            tx.event("step.event_received", step.node_id, event_id=event.event_id, name=event.name, key=event.key)
            if outcomes.step_record_success(tx, ref, attempt=step.attempt, output=event.payload):
                woken.append({"run": str(run_id), "step": step.node_id})
    return woken


def events_purge(*, batch: int = 500) -> int:
    """Delete events kept longer than WEFT_EVENT_RETENTION_S; returns how many."""
    with connection.cursor() as cur:
        execute(cur, SQL["events_purge"], {"retention_s": float(settings.WEFT_EVENT_RETENTION_S), "batch": batch})
        return cur.rowcount
