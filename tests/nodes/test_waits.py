"""sleep, approval and subworkflow: steps that wait without holding a worker (in-process executor)."""

from __future__ import annotations

import time

import pytest
from django.db.models.functions import Now

from engine.exceptions import GraphInvalid
from engine.models import Attempt, Run, StepRun
from engine.services.scheduler import run_start, step_approve, step_reject
from engine.services.workflows import workflow_save
from tests.conftest import definition, node
from tests.support.transition_guard import transitions_unchecked

pytestmark = pytest.mark.django_db
# A child run settles its parent on commit: those tests need real commits.
commits = pytest.mark.django_db(transaction=True)


def execute_next() -> None:
    """Run the oldest queued delivery with the real executor (one step of a drain)."""
    from django_q.models import OrmQ
    from django_q.signing import SignedPackage

    from engine.worker.executor import execute_step

    row = OrmQ.objects.order_by("id").first()
    OrmQ.objects.filter(pk=row.pk).delete()
    execute_step(*SignedPackage.loads(row.payload)["args"])


def start(d, inputs=None):
    run, _ = run_start(workflow=workflow_save(definition=d)[0], inputs=inputs or {})
    return run


def step(run, node_id) -> StepRun:
    return StepRun.objects.get(run=run, node_id=node_id)


def test_sleep_parks_the_step_and_the_timer_wakes_it(drain):
    run = start(definition("nap", [{"id": "nap", "type": "sleep", "config": {"seconds": 0.3}}, node("after")],
                           [("nap", "after")]))
    drain()
    nap = step(run, "nap")
    assert nap.status == "waiting" and nap.waiting_reason == "sleep" and nap.wake_at is not None
    assert Attempt.objects.get(step=nap).outcome == "waiting"  # the attempt ended: no worker is held
    until = nap.waiting_detail["until"]
    time.sleep(0.4)
    drain()
    nap.refresh_from_db()
    assert nap.status == "succeeded" and nap.output == {"slept_until": until}
    assert step(run, "after").status == "succeeded"


def test_sleep_until_a_past_time_does_not_wait(drain):
    run = start(definition("past", [{"id": "nap", "type": "sleep", "config": {"until": "2001-01-01T00:00:00Z"}}], []))
    drain()
    assert step(run, "nap").output == {"slept_until": "2001-01-01T00:00:00+00:00"}


def approval_flow(**config) -> dict:
    return definition("approve", [{"id": "ok", "type": "approval",
                                   "config": {"message": "Refund {{ inputs.amount }} EUR?", **config}},
                                  node("pay")], [("ok", "pay")], inputs={"type": "object"})


def test_approval_waits_for_an_operator_and_continues_when_approved(drain):
    run = start(approval_flow(), {"amount": 30})
    drain()
    ok = step(run, "ok")
    assert ok.status == "waiting" and ok.waiting_reason == "approval"
    assert ok.waiting_detail == {"message": "Refund 30 EUR?"}
    assert step(run, "pay").status == "pending"
    step_approve(run_id=run.pk, node_id="ok", comment="fine", actor="alice")
    drain()
    assert step(run, "ok").output == {"approved": True, "comment": "fine", "by": "alice"}
    assert step(run, "pay").status == "succeeded"


def test_rejection_fails_the_step_and_blocks_downstream(drain):
    run = start(approval_flow(), {"amount": 30})
    drain()
    step_reject(run_id=run.pk, node_id="ok", comment="too much", actor="bob")
    drain()
    run.refresh_from_db()
    assert run.status == "failed"
    assert "too much" in step(run, "ok").error and step(run, "pay").status == "upstream_failed"


@pytest.mark.parametrize("on_timeout,status", [("approve", "succeeded"), ("reject", "failed")])
def test_approval_timeout_applies_the_default_decision(drain, on_timeout, status):
    run = start(approval_flow(timeout_s=3600, on_timeout=on_timeout), {"amount": 1})
    drain()
    StepRun.objects.filter(run=run, node_id="ok").update(wake_at=Now())  # an hour later
    drain()
    ok = step(run, "ok")
    assert ok.status == status
    if status == "succeeded":
        assert ok.output["by"] == "timeout" and step(run, "pay").status == "succeeded"
    else:
        assert "rejected automatically" in ok.error


def child_workflow(fail=False):
    nodes = [node("c1", "tests.add", kwargs={"a": "{{ inputs.x }}", "b": 1})]
    if fail:
        nodes.append(node("c2", "tests.raise", kwargs={"message": "child broke"}, retry={"max_attempts": 1}))
    else:
        nodes.append(node("c2", "tests.add", kwargs={"a": "{{ nodes.c1.output.sum }}", "b": 100}))
    return workflow_save(definition=definition("child", nodes, [("c1", "c2")],
                                               inputs={"type": "object", "required": ["x"]}))[0]


def parent_definition():
    return definition("parent", [node("before", "tests.add", kwargs={"a": 1, "b": 1}),
                                 {"id": "sub", "type": "subworkflow",
                                  "config": {"workflow": "child", "inputs": {"x": "{{ nodes.before.output.sum }}"}}},
                                 {"id": "after", "type": "transform",
                                  "config": {"template": "{{ nodes.sub.output.c2.sum }}"}}],
                      [("before", "sub"), ("sub", "after")])


@commits
def test_subworkflow_step_completes_with_the_child_runs_outputs(drain):
    child_workflow()
    run = start(parent_definition())
    drain()
    run.refresh_from_db()
    sub = step(run, "sub")
    child = Run.objects.get(parent_step=sub)
    assert child.status == "succeeded" and child.inputs == {"x": 2}
    assert child.trigger == {"kind": "subworkflow", "parent_run": str(run.pk), "parent_step": "sub"}
    assert run.trigger == {"kind": "manual"}
    assert sub.status == "succeeded" and sub.output == {"c2": {"sum": 103}}
    assert run.status == "succeeded" and step(run, "after").output == 103
    assert Attempt.objects.filter(step=sub).count() == 1  # settled by the child's completion, not a worker


@commits
def test_subworkflow_pinned_to_a_version_runs_that_version(drain):
    child_workflow()
    child_workflow(fail=True)  # version 2 of "child" fails; the parent pins version 1
    pinned = parent_definition()
    pinned["nodes"][1]["config"]["version"] = 1
    run = start(pinned)
    drain()
    run.refresh_from_db()
    child = Run.objects.get(parent_step=step(run, "sub"))
    assert child.version.number == 1 and child.status == "succeeded"
    assert run.status == "succeeded" and step(run, "after").output == 103
    missing = parent_definition()
    missing["slug"] = "parent-missing"
    missing["nodes"][1]["config"]["version"] = 7
    with pytest.raises(GraphInvalid, match="has no version 7"):
        start(missing)


@commits
def test_failed_child_fails_the_subworkflow_step(drain):
    child_workflow(fail=True)
    run = start(parent_definition())
    drain()
    sub = step(run, "sub")
    assert sub.status == "failed" and "child broke" in sub.error
    assert step(run, "after").status == "upstream_failed"


@commits
def test_a_child_that_finished_before_the_parent_recorded_its_wait_is_settled_by_recovery(drain):
    child_workflow()
    run = start(parent_definition())
    execute_next()  # "before"
    execute_next()  # "sub": starts the child, then waits
    sub = step(run, "sub")
    assert sub.status == "waiting"
    # Replay the race: the parent's worker had not yet recorded its wait when the child finished.
    with transitions_unchecked():
        StepRun.objects.filter(pk=sub.pk).update(status="running")
    child = Run.objects.get(parent_step=sub)
    drain(recover=False)  # c1, c2: the child finishes; settling on commit finds the parent step still running
    child.refresh_from_db()
    assert child.status == "succeeded" and step(run, "sub").status == "running"
    StepRun.objects.filter(pk=sub.pk).update(status="waiting")  # ...and now the wait is recorded
    drain()  # recovery settles it
    assert step(run, "sub").status == "succeeded" and step(run, "after").output == 103


@commits
def test_a_retried_subworkflow_step_never_starts_a_second_child(drain):
    from engine.worker.executor import execute_step

    child_workflow()
    run = start(parent_definition())
    execute_next()  # "before"
    execute_next()  # "sub", attempt 1
    sub = step(run, "sub")
    # The worker died after starting the child but before recording its wait: the step runs again.
    StepRun.objects.filter(pk=sub.pk).update(status="queued", attempt=2, waiting_reason="", waiting_detail=None)
    execute_step(str(run.pk), sub.pk, 2)
    assert Run.objects.filter(parent_step=sub).count() == 1
    assert step(run, "sub").waiting_detail["child_run"] == str(Run.objects.get(parent_step=sub).pk)
    drain()
    assert step(run, "sub").status == "succeeded"


@commits
def test_cancelling_the_parent_run_cancels_its_unfinished_child(drain):
    from engine.services.scheduler import run_cancel
    from engine.worker.recovery import recover_once

    child_workflow()
    run = start(parent_definition())
    execute_next()  # "before"
    execute_next()  # "sub": starts the child, then waits
    child = Run.objects.get(parent_step=step(run, "sub"))
    run_cancel(run_id=run.pk, actor="operator")
    assert step(run, "sub").status == "cancelled"
    recover_once()
    child.refresh_from_db()
    assert child.status == "cancelled" and "parent step was cancelled" in child.error
