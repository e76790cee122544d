"""A finished child run settles its parent's waiting ``subworkflow`` step: the one transition that crosses runs.

The parent step waits (``waiting_reason = "subworkflow"``, ``waiting_detail = {"child_run": id}``)
without holding a worker. When the child run reaches a terminal status, ``subworkflow_settle`` opens
a ``RunTx`` on the *parent* run, after the child's transaction has committed, and completes the step
with the child's outputs (or fails it with the child's error). It is called

- on commit of the child's final transaction (``RunTx._finish_run``), and
- by recovery (``engine.services.subworkflows.subworkflows_recover``), for children that finished while the
  parent step was not yet recorded as waiting, were cancelled, or whose on-commit call was lost with its process.

Locks: a child run is created and finished in transactions that lock only the child; settling locks
only the parent. No transaction ever holds both, so there is no lock-order to get wrong.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from django.db import transaction

from engine.core import outcomes
from engine.core.runtx import CHILD_RUN_FINISHED, RunTx, StepRef
from engine.models import Run, StepRun
from engine.states import RUN_TERMINAL, RunStatus, StepStatus

log = logging.getLogger(__name__)

REASON = "subworkflow"


@dataclass(frozen=True)
class ChildOutcome:
    """How a finished child run ended, for its parent step: its outputs if it succeeded, else why it did not."""

    succeeded: bool
    outputs: dict | None = None  # when it succeeded
    error: str = ""  # when it failed, was cancelled, or no longer exists


def child_outcome(child_run_id) -> ChildOutcome | None:
    """The outcome of a terminal child run; None while it is unfinished."""
    row = Run.objects.filter(pk=child_run_id).values("status", "outputs", "error").first()
    if row is None:
        return ChildOutcome(succeeded=False, error=f"child run {child_run_id} no longer exists")
    if row["status"] not in RUN_TERMINAL:
        return None
    if row["status"] == RunStatus.SUCCEEDED:
        return ChildOutcome(succeeded=True, outputs=row["outputs"] or {})
    message = f"child run {child_run_id} {row['status']}: {row['error'] or 'no error recorded'}"
    first = (StepRun.objects.filter(run_id=child_run_id, status=StepStatus.FAILED).order_by("finished_at", "id")
             .values_list("node_id", "error").first())
    if first:
        message += f" (first failure: {first[0]}: {first[1][:2000]})"
    return ChildOutcome(succeeded=False, error=message)


def subworkflow_settle(child_run_id) -> bool:
    """Complete the parent step of a finished child run. Returns whether this call settled it."""
    child = Run.objects.filter(pk=child_run_id).values("status", "parent_step_id").first()
    if child is None or child["parent_step_id"] is None or child["status"] not in RUN_TERMINAL:
        return False
    parent_run_id = StepRun.objects.filter(pk=child["parent_step_id"]).values_list("run_id", flat=True).first()
    if parent_run_id is None:
        return False
    outcome = child_outcome(child_run_id)
    if outcome is None:  # reopened since (a rerun of one of its steps): settled when it finishes again
        return False
    with RunTx(parent_run_id, actor="subworkflow") as tx:
        step = StepRun.objects.filter(pk=child["parent_step_id"]).first()
        if (step is None or step.status != StepStatus.WAITING or step.waiting_reason != REASON
                or (step.waiting_detail or {}).get("child_run") != str(child_run_id)):
            return False
        ref = StepRef(step.id, step.node_id, step.status, step.attempt)
        if outcome.succeeded:
            return outcomes.step_record_success(tx, ref, attempt=step.attempt, output=outcome.outputs)
        return outcomes.step_record_failure(tx, ref, attempt=step.attempt, error=outcome.error, retry_in=None)


def settle_on_commit(child_run_id) -> None:
    """Settle the parent once the current transaction (which finishes the child) has committed."""

    def settle():
        try:
            subworkflow_settle(child_run_id)
        except Exception:  # recovery settles it later; never fail the child's committer
            log.warning("settling the parent of child run %s failed; recovery will retry", child_run_id,
                        exc_info=True)

    transaction.on_commit(settle)


CHILD_RUN_FINISHED.append(settle_on_commit)
