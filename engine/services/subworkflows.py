"""Sub-workflows: starting a child run for a parent step, and the recovery of parents and children.

How a finished child settles its parent is in ``engine.core.children``.

Recovery settles the parents of children that finished while the parent step was not yet recorded as
waiting, or whose on-commit settlement was lost with its process, and cancels the unfinished children of a
cancelled parent step.
"""

from __future__ import annotations

import logging

from django.db.models import CharField, Exists, OuterRef
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Cast

from engine.core.children import REASON, subworkflow_settle
from engine.exceptions import InvalidTransition
from engine.models import Run, StepRun
from engine.services import scheduler
from engine.states import RUN_TERMINAL, RunStatus, StepStatus

log = logging.getLogger(__name__)

BATCH = 200


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
