"""Sub-workflow completion: a finished child run settles its parent's waiting ``subworkflow`` step.

The parent step waits (``waiting_reason = "subworkflow"``, ``waiting_detail = {"child_run": id}``)
without holding a worker. When the child run reaches a terminal status, ``subworkflow_settle`` opens
a ``RunTx`` on the *parent* run, after the child's transaction has committed, and completes the step
with the child's outputs (or fails it with the child's error). It is called

- on commit of the child's final transaction (``RunTx._finish_run``), and
- by recovery (``subworkflows_recover``), for children that finished while the parent step was
  not yet recorded as waiting, were cancelled, or whose on-commit call was lost with its process.

Recovery also cancels the unfinished children of a cancelled parent step.

Locks: a child run is created and finished in transactions that lock only the child; settling locks
only the parent. No transaction ever holds both, so there is no lock-order to get wrong.
"""

from __future__ import annotations

import logging

from django.db import transaction
from django.db.models import CharField, Exists, OuterRef
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Cast

from engine import outcomes, scheduler
from engine.exceptions import InvalidTransition
from engine.models import Run, StepRun
from engine.runtx import RunTx, StepRef
from engine.states import RUN_TERMINAL, RunStatus, StepStatus

log = logging.getLogger(__name__)

BATCH = 200
REASON = "subworkflow"


def child_outcome(child_run_id) -> tuple[str, object] | None:
    """("succeeded", outputs) or ("failed", error) for a terminal child run; None while it is unfinished."""
    row = Run.objects.filter(pk=child_run_id).values("status", "outputs", "error").first()
    if row is None:
        return "failed", f"child run {child_run_id} no longer exists"
    if row["status"] not in RUN_TERMINAL:
        return None
    if row["status"] == RunStatus.SUCCEEDED:
        return "succeeded", row["outputs"] or {}
    message = f"child run {child_run_id} {row['status']}: {row['error'] or 'no error recorded'}"
    first = (StepRun.objects.filter(run_id=child_run_id, status=StepStatus.FAILED).order_by("finished_at", "id")
             .values_list("node_id", "error").first())
    if first:
        message += f" (first failure: {first[0]}: {first[1][:2000]})"
    return "failed", message


def subworkflow_settle(child_run_id) -> bool:
    """Complete the parent step of a finished child run. Returns whether this call settled it."""
    child = Run.objects.filter(pk=child_run_id).values("status", "parent_step_id").first()
    if child is None or child["parent_step_id"] is None or child["status"] not in RUN_TERMINAL:
        return False
    parent_run_id = StepRun.objects.filter(pk=child["parent_step_id"]).values_list("run_id", flat=True).first()
    if parent_run_id is None:
        return False
    outcome = child_outcome(child_run_id)
    with RunTx(parent_run_id, actor="subworkflow") as tx:
        step = StepRun.objects.filter(pk=child["parent_step_id"]).first()
        if (step is None or step.status != StepStatus.WAITING or step.waiting_reason != REASON
                or (step.waiting_detail or {}).get("child_run") != str(child_run_id)):
            return False
        ref = StepRef(step.id, step.node_id, step.status, step.attempt)
        kind, value = outcome
        if kind == "succeeded":
            return outcomes.step_record_success(tx, ref, attempt=step.attempt, output=value)
        return outcomes.step_record_failure(tx, ref, attempt=step.attempt, error=str(value), retry_in=None)


def settle_on_commit(child_run_id) -> None:
    """Settle the parent once the current transaction (which finishes the child) has committed."""

    def settle():
        try:
            subworkflow_settle(child_run_id)
        except Exception:  # recovery settles it later; never fail the child's committer
            log.warning("settling the parent of child run %s failed; recovery will retry", child_run_id,
                        exc_info=True)

    transaction.on_commit(settle)


def subworkflows_recover() -> int:
    """Recovery pass: settle parents of finished children, cancel children of cancelled parents."""
    return settle_finished_children() + cancel_orphaned_children()


def cancel_orphaned_children() -> int:
    """Cancel unfinished child runs whose parent step was cancelled (its run was cancelled)."""
    due = list(Run.objects.filter(status__in=[RunStatus.PENDING, RunStatus.RUNNING],
                                  parent_step__status=StepStatus.CANCELLED).values_list("pk", flat=True)[:BATCH])
    cancelled = 0
    for child_id in due:
        try:
            scheduler.run_cancel(run_id=child_id, actor="subworkflow", reason="the parent step was cancelled")
            cancelled += 1
        except InvalidTransition:
            pass  # it finished meanwhile
    return cancelled


def settle_finished_children() -> int:
    """Waiting subworkflow steps whose child run is terminal. Returns how many it settled."""
    finished_child = Run.objects.annotate(id_text=Cast("pk", CharField())).filter(
        parent_step=OuterRef("pk"), status__in=list(RUN_TERMINAL), id_text=OuterRef("child_run"))
    due = list(
        StepRun.objects.filter(status=StepStatus.WAITING, waiting_reason=REASON)
        .annotate(child_run=KeyTextTransform("child_run", "waiting_detail"))
        .filter(Exists(finished_child))
        .values_list("child_run", flat=True)[:BATCH]
    )
    return sum(1 for child in due if subworkflow_settle(child))
