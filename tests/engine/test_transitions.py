"""The owner of status changes (engine.core.transitions) and the transaction around it (RunTx): what a
transition that loses its compare-and-set, or whose transaction fails, leaves behind."""

from __future__ import annotations

import pytest

from engine.core import runtx
from engine.models import Run, StepRun
from engine.services.scheduler import run_cancel, run_start
from engine.services.workflows import workflow_save
from tests.conftest import chain

pytestmark = pytest.mark.django_db(transaction=True)


def save(d):
    return workflow_save(definition=d)[0]


def held_by_a_later_attempt(run, node_id: str) -> StepRun:
    """The step ``node_id`` of ``run``, running at attempt 2: attempt 1 was fenced out."""
    StepRun.objects.filter(run=run, node_id=node_id).update(status="running", attempt=2, error="")
    return StepRun.objects.get(run=run, node_id=node_id)


def test_a_transaction_whose_writes_fail_at_its_end_raises_and_changes_nothing(monkeypatch):
    run, _ = run_start(workflow=save(chain("flush-fails", 2)))

    def broken(*args, **kwargs):
        raise RuntimeError("the events could not be written")

    monkeypatch.setattr(runtx, "events_write", broken)
    with pytest.raises(RuntimeError, match="could not be written"):
        run_cancel(run_id=run.pk, reason="stop")
    assert Run.objects.get(pk=run.pk).status == "running"
    assert set(StepRun.objects.filter(run=run).values_list("status", flat=True)) == {"queued", "pending"}
