"""Recovery: expired leases, due retries and timers, queued steps whose broker row is gone, waiting runs whose
concurrency group has room.

One recovery loop is active at a time across all machines: the holder of a
Postgres session-level advisory lock. Each pass is small (bounded batches) and
says whether more work may be waiting.
"""

from __future__ import annotations

import logging
import threading
from datetime import timedelta

from django.conf import settings
from django.db import DatabaseError, connection
from django.db.models import Exists, OuterRef
from django.db.models.functions import Now
from django_q.models import OrmQ

from engine import statements
from engine.core import concurrency, eventwaits, outcomes, registry
from engine.core.children import REASON as SUBWORKFLOW_REASON
from engine.core.limits import REASON as LIMIT_REASON
from engine.core.readiness import RetryPolicy, retry_decision
from engine.core.runtx import RunTx, StepRef
from engine.core.versions import version_graph
from engine.models import Attempt, StepRun
from engine.observability import hooks as observe
from engine.observability.run_tally import PeriodicRunTally
from engine.services.retention import DailyRetention
from engine.states import RUN_TERMINAL, RunStatus, StepStatus

log = logging.getLogger(__name__)

ADVISORY_LOCK_ID = 0x5745_4654  # "WEFT"
BATCH = 200
ORPHAN_GRACE_S = 10


SQL = statements.load(__file__, "sql/recovery.sql")
ANYTHING_DUE = statements.compose(SQL["anything_due"], event_wait_due=eventwaits.SQL["event_wait_due"],
                                  run_waiting_with_room=concurrency.WAITING_WITH_ROOM)


def anything_due() -> bool:
    """Whether a pass has anything to do (one statement; see sql/recovery.sql)."""
    with connection.cursor() as cur:
        statements.execute(cur, ANYTHING_DUE, {"subworkflow": SUBWORKFLOW_REASON,
                                               "run_terminal": sorted(RUN_TERMINAL), "orphan_grace": ORPHAN_GRACE_S,
                                               "limit_reason": LIMIT_REASON, "event_reason": eventwaits.REASON,
                                               "retention_s": float(settings.WEFT_EVENT_RETENTION_S),
                                               **concurrency.ROOM_PARAMS})
        return bool(cur.fetchone()[0])


def recover_once() -> int:
    """One pass. Returns how many steps it acted on (0: nothing was due)."""
    from engine.services.subworkflows import subworkflows_recover

    if not anything_due():
        return 0
    return (expire_leases() + requeue_due_retries() + wake_due_timers() + reenqueue_orphans()
            + subworkflows_recover() + eventwaits.event_waits_recover() + concurrency.runs_waiting_heal())


def expire_leases() -> int:
    """A running step whose lease expired lost its worker: count the attempt as lost and apply its retry policy."""
    due = list(
        StepRun.objects.filter(status=StepStatus.RUNNING, lease_expires_at__lt=Now())
        .order_by("lease_expires_at")
        .values_list("run_id", "id", "attempt")[:BATCH]
    )
    for run_id, step_id, attempt in due:
        with RunTx(run_id, actor="recovery") as tx:
            row = StepRun.objects.filter(pk=step_id, status=StepStatus.RUNNING, attempt=attempt,
                                         lease_expires_at__lt=Now()).first()
            if row is None:
                continue
            node = tx.graph.node(row.node_id)
            policy = RetryPolicy.from_config(node.retry, settings.WEFT_DEFAULT_RETRY)
            error = f"WorkerLost: worker {row.worker} stopped heartbeating; lease expired"
            tried = outcomes.attempts_tried(step_id, attempt)
            retry_in = retry_decision(policy, attempt=tried, error_type="WorkerLost")
            ref = StepRef(row.id, row.node_id, row.status, row.attempt)
            if outcomes.step_record_failure(tx, ref, attempt=attempt, error=error, retry_in=retry_in):
                Attempt.objects.filter(step_id=step_id, number=attempt).update(
                    outcome=Attempt.Outcome.LOST, finished_at=Now(), error=error, error_type="WorkerLost")
                tx.event("step.lost", row.node_id, attempt=attempt, worker=row.worker)
                observe.attempt_lost(row, retried=retry_in is not None)
    return len(due)


def requeue_due_retries() -> int:
    due = list(
        StepRun.objects.filter(status=StepStatus.RETRY_WAIT, next_attempt_at__lte=Now())
        .order_by("next_attempt_at")
        .values_list("run_id", "id")[:BATCH]
    )
    for run_id, step_id in due:
        with RunTx(run_id, actor="recovery") as tx:
            row = StepRun.objects.filter(pk=step_id, status=StepStatus.RETRY_WAIT, next_attempt_at__lte=Now()).first()
            if row is not None:
                ref = StepRef(row.id, row.node_id, row.status, row.attempt)
                if tx.run_status == RunStatus.RUNNING:
                    tx.queue(ref, next_attempt=row.attempt + 1)
                else:
                    tx.step_set_status(ref, StepStatus.CANCELLED)
    return len(due)


def wake_due_timers() -> int:
    """Waiting steps whose timer fired (durable sleep, approval timeout): the node type decides the outcome."""
    due = list(
        StepRun.objects.filter(status=StepStatus.WAITING, wake_at__lte=Now())
        .order_by("wake_at")
        .values_list("run_id", "id")[:BATCH]
    )
    for run_id, step_id in due:
        with RunTx(run_id, actor="timer") as tx:
            row = StepRun.objects.filter(pk=step_id, status=StepStatus.WAITING, wake_at__lte=Now()).first()
            if row is None:
                continue
            impl = registry.get_node_type(row.node_type).cls()
            on_wake = getattr(impl, "on_wake", None)
            decision = on_wake(row) if on_wake else {"outcome": "succeeded", "output": row.output}
            ref = StepRef(row.id, row.node_id, row.status, row.attempt)
            if decision["outcome"] == "succeeded":
                outcomes.step_record_success(tx, ref, attempt=row.attempt, output=decision.get("output"))
            else:
                outcomes.step_record_failure(tx, ref, attempt=row.attempt, error=decision.get("error", "timed out"),
                                             retry_in=None)
    return len(due)


def reenqueue_orphans() -> int:
    """A queued step with no broker row (lost by a broker outside Postgres, or a delivery that failed
    before claiming) is given a new broker row for the same attempt. A step waiting for a limit has none on
    purpose: admission gives it one."""
    cutoff = Now() - timedelta(seconds=ORPHAN_GRACE_S)
    due = list(
        StepRun.objects.filter(status=StepStatus.QUEUED, queued_at__lt=cutoff).exclude(waiting_reason=LIMIT_REASON)
        .exclude(Exists(OrmQ.objects.filter(pk=OuterRef("broker_msg_id"))))
        .values_list("run_id", "id", "attempt", "queue", "node_id", "run__priority", "run__version_id")[:BATCH]
    )
    from django.db import transaction

    from engine.core.queues import Delivery, enqueue, step_priority

    for run_id, step_id, attempt, queue, node_id, run_priority, version_id in due:
        with transaction.atomic():
            locked = StepRun.objects.select_for_update(skip_locked=True).filter(
                pk=step_id, status=StepStatus.QUEUED, attempt=attempt).exclude(
                Exists(OrmQ.objects.filter(pk=OuterRef("broker_msg_id")))).first()
            if locked is not None:
                log.warning("re-enqueueing step %s attempt %s: its broker message is gone", step_id, attempt)
                StepRun.objects.filter(pk=step_id).update(queued_at=Now())
                priority = step_priority(run_priority, version_graph(version_id).node(node_id).priority)
                enqueue([Delivery(str(run_id), step_id, attempt, queue, priority)])
    return len(due)


class RecoveryLoop(threading.Thread):
    """Runs ``recover_once`` every WEFT_RECOVERY_INTERVAL_S while holding the advisory lock, and with it the daily
    retention (a batch a pass while one is under way) and the run tally (every WEFT_RUN_TALLY_S)."""

    def __init__(self):
        super().__init__(name="weft-recovery", daemon=True)
        self.stopping = threading.Event()
        self.is_leader = False
        self.retention = DailyRetention()
        self.run_tally = PeriodicRunTally()

    def run(self) -> None:
        interval = settings.WEFT_RECOVERY_INTERVAL_S
        failing = 0
        try:
            while not self.stopping.is_set():
                try:
                    if not self.is_leader:
                        self.is_leader = self._try_lock()
                    busy = recover_once() if self.is_leader else 0
                    if self.is_leader:
                        self.retention.step()  # one batch a pass at most: pruning never crowds out recovery
                        self.run_tally.step()
                    if failing:
                        log.warning("recovery: database reachable again after %d failed pass(es)", failing)
                        failing = 0
                except DatabaseError as exc:
                    # One line per outage, not one traceback per pass.
                    if not failing:
                        log.warning("recovery pass failed, retrying every %.1f s: %s", interval,
                                    str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__)
                    failing += 1
                    self.is_leader = False
                    connection.close()
                    busy = 0
                if not busy:
                    self.stopping.wait(interval)
        finally:
            connection.close()

    def _try_lock(self) -> bool:
        with connection.cursor() as cur:
            statements.execute(cur, SQL["leader_lock"], {"lock": ADVISORY_LOCK_ID})
            return bool(cur.fetchone()[0])

    def stop(self) -> None:
        self.stopping.set()
