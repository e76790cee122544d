"""The test database's trigger refuses a status change the transition table does not allow, and lets the others by."""

from __future__ import annotations

import itertools

import pytest
from django.db import DatabaseError, transaction

from engine.models import Run, StepRun
from engine.services.workflows import workflow_save
from engine.states import RUN_NEXT, STEP_NEXT, RunStatus, StepStatus
from tests.conftest import chain
from tests.support.transition_guard import REFUSED, transitions_unchecked

pytestmark = pytest.mark.django_db

_names = (f"n{i}" for i in itertools.count())


@pytest.fixture
def new_run():
    """A maker of runs in a given status. Rows are inserted: a new row's status is no transition."""
    workflow, version, _ = workflow_save(definition=chain("guarded", 1))
    return lambda status: Run.objects.create(workflow=workflow, version=version, status=status)


@pytest.fixture
def new_step(new_run):
    run = new_run(RunStatus.RUNNING)
    return lambda status: StepRun.objects.create(run=run, node_id=next(_names), node_type="python",
                                                 queue="default", status=status)


def status_set(row, status) -> int:
    """A plain UPDATE of the status, past every check in Python: only the trigger stands in the way."""
    with transaction.atomic():
        return type(row).objects.filter(pk=row.pk).update(status=status)


def test_a_succeeded_run_cannot_go_back_to_pending(new_run):
    assert RunStatus.PENDING not in RUN_NEXT[RunStatus.SUCCEEDED]
    run = new_run(RunStatus.SUCCEEDED)
    with pytest.raises(DatabaseError, match=f"{REFUSED}: engine_run {run.pk} succeeded -> pending"):
        status_set(run, RunStatus.PENDING)
    assert Run.objects.get(pk=run.pk).status == RunStatus.SUCCEEDED


def test_a_cancelled_step_cannot_start_running(new_step):
    assert StepStatus.RUNNING not in STEP_NEXT[StepStatus.CANCELLED]
    step = new_step(StepStatus.CANCELLED)
    with pytest.raises(DatabaseError, match=f"{REFUSED}: engine_steprun {step.pk} cancelled -> running"):
        status_set(step, StepStatus.RUNNING)
    assert StepRun.objects.get(pk=step.pk).status == StepStatus.CANCELLED


def test_every_change_the_table_allows_passes_and_every_other_is_refused(new_run, new_step):
    for new_row, table in ((new_run, RUN_NEXT), (new_step, STEP_NEXT)):
        for source, target in itertools.permutations(table, 2):
            row = new_row(source)
            if target in table[source]:
                assert status_set(row, target) == 1
            else:
                with pytest.raises(DatabaseError, match=f"{REFUSED}: .* {source} -> {target} "):
                    status_set(row, target)
            assert type(row).objects.get(pk=row.pk).status == (target if target in table[source] else source)


def test_an_update_that_keeps_the_status_is_no_transition(new_run):
    run = new_run(RunStatus.CANCELLED)  # a cancelled run may move nowhere
    assert status_set(run, RunStatus.CANCELLED) == 1


def test_a_test_may_set_a_row_back_in_a_block_that_says_so_and_only_there(new_run):
    run = new_run(RunStatus.SUCCEEDED)
    with transitions_unchecked():
        assert status_set(run, RunStatus.PENDING) == 1
    assert Run.objects.get(pk=run.pk).status == RunStatus.PENDING
    status_set(run, RunStatus.RUNNING)
    status_set(run, RunStatus.SUCCEEDED)
    with pytest.raises(DatabaseError, match=f"{REFUSED}: engine_run {run.pk} succeeded -> pending"):
        status_set(run, RunStatus.PENDING)
