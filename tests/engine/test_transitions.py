"""The owner of status changes (engine.core.transitions) and the transaction around it (RunTx): what a
transition that loses its compare-and-set, or whose transaction fails, leaves behind."""

from __future__ import annotations

import pytest
from django.db import connection

from engine.core import outcomes, registry, runtx
from engine.core.inline import is_inline
from engine.core.runtx import RunTx, StepRef
from engine.models import Event, Run, StepRun
from engine.services.scheduler import (
    run_cancel,
    run_start,
    step_approve,
    step_reject,
    step_rerun_from,
    step_retry,
)
from engine.services.workflows import workflow_save
from tests.conftest import chain, definition, node

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


def test_a_fenced_out_success_emits_no_edge_events():
    wf = save(definition("fenced-edges", [node("a"), node("b")],
                         [{"source": "a", "target": "b", "condition": "output.missing.deep"}]))
    run, _ = run_start(workflow=wf)
    a = held_by_a_later_attempt(run, "a")
    with RunTx(run.pk) as tx:
        won = outcomes.step_record_success(tx, StepRef(a.id, "a", "running", 1), attempt=1, output={"x": 1},
                                           attempt_row={"logs": [], "metrics": {}})
    assert won is False
    assert not Event.objects.filter(run=run, type="edge.condition_failed").exists()
    assert StepRun.objects.get(run=run, node_id="b").status == "pending"


def test_a_winning_success_still_emits_its_edge_events():
    wf = save(definition("won-edges", [node("a"), node("b")],
                         [{"source": "a", "target": "b", "condition": "output.missing.deep"}]))
    run, _ = run_start(workflow=wf)
    StepRun.objects.filter(run=run, node_id="a").update(status="running")
    a = StepRun.objects.get(run=run, node_id="a")
    with RunTx(run.pk) as tx:
        won = outcomes.step_record_success(tx, StepRef(a.id, "a", "running", a.attempt), attempt=a.attempt,
                                           output={"x": 1}, attempt_row={"logs": [], "metrics": {}})
    assert won is True
    assert Event.objects.filter(run=run, type="edge.condition_failed", node_id="b").count() == 1
    assert StepRun.objects.get(run=run, node_id="b").status == "upstream_failed"


def test_a_fenced_out_failure_retried_at_once_leaves_the_current_attempts_error_alone():
    run, _ = run_start(workflow=save(chain("fenced-requeue", 2)))
    a = held_by_a_later_attempt(run, "s1")
    with RunTx(run.pk) as tx:
        won = outcomes.step_record_failure(tx, StepRef(a.id, "s1", "running", 1), attempt=1, error="stale attempt",
                                           retry_in=0)
    assert won is False
    step = StepRun.objects.get(pk=a.pk)
    assert (step.status, step.attempt, step.error) == ("running", 2, "")


def test_a_failure_retried_at_once_keeps_its_error_on_the_requeued_step():
    run, _ = run_start(workflow=save(chain("requeue", 2)))
    StepRun.objects.filter(run=run, node_id="s1").update(status="running")
    a = StepRun.objects.get(run=run, node_id="s1")
    with RunTx(run.pk) as tx:
        won = outcomes.step_record_failure(tx, StepRef(a.id, "s1", "running", a.attempt), attempt=a.attempt,
                                           error="boom", retry_in=0)
    assert won is True
    step = StepRun.objects.get(pk=a.pk)
    assert (step.status, step.attempt, step.error) == ("queued", a.attempt + 1, "boom")


def test_a_registry_error_is_not_taken_for_a_queued_node(monkeypatch):
    def broken(name):
        raise RuntimeError("registry broken")

    monkeypatch.setattr(registry, "get_node_type", broken)
    with pytest.raises(RuntimeError, match="registry broken"):
        is_inline("transform")


def test_only_an_unknown_node_type_counts_as_not_inline():
    assert is_inline("no-such-node-type") is False
    assert is_inline("transform") is True
    assert is_inline("python") is False


@pytest.mark.parametrize("decide, status", [(step_approve, "succeeded"), (step_reject, "failed")])
def test_a_decided_step_keeps_no_waiting_detail(decide, status, drain):
    wf = save(definition(f"decide-{status}", [{"id": "ok", "type": "approval", "config": {"message": "Go?"}},
                                              node("after")], [("ok", "after")]))
    run, _ = run_start(workflow=wf)
    drain()
    ok = StepRun.objects.get(run=run, node_id="ok")
    assert (ok.status, ok.waiting_reason, ok.waiting_detail) == ("waiting", "approval", {"message": "Go?"})
    decide(run_id=run.pk, node_id="ok", comment="fine", actor="alice")
    ok.refresh_from_db()
    assert (ok.status, ok.waiting_reason, ok.waiting_detail, ok.wake_at) == (status, "", None, None)


def test_every_status_change_of_every_path_is_in_the_transition_table(drain, tmp_path):
    """Chains, fan-outs, inline steps, retries, reruns, approvals and cancels all finish with the test database's
    transition guard on (tests/support/transition_guard.py), which refuses any status change the table does not
    allow, whichever statement makes it."""
    with connection.cursor() as cur:
        cur.execute("SELECT tgname FROM pg_trigger WHERE tgenabled <> 'D' AND NOT tgisinternal"
                    " AND tgrelid IN ('engine_steprun'::regclass, 'engine_run'::regclass) ORDER BY 1")
        assert [name for (name,) in cur.fetchall()] == ["test_run_transition_check", "test_step_transition_check"]
    flag = tmp_path / "flag"
    fan_out = definition("fan", [node("a"), node("b"), node("c"), node("d"), node("e"),
                                 {"id": "t", "type": "transform", "config": {"template": {"ok": True}}}],
                         [("a", "b"), ("a", "c"), ("a", "d"), ("b", "e"), ("c", "e"), ("d", "e"), ("e", "t")])
    flaky = chain("flaky", 3, lambda i: node(f"s{i}", "tests.fail_until_flag", kwargs={"flag": str(flag)},
                                           retry={"max_attempts": 2, "backoff_s": 0}) if i == 2 else node(f"s{i}"))
    chained, _ = run_start(workflow=save(chain("chained", 3)))
    fanned, _ = run_start(workflow=save(fan_out))
    failing, _ = run_start(workflow=save(flaky))
    drain()
    assert Run.objects.get(pk=chained.pk).status == "succeeded" and Run.objects.get(pk=fanned.pk).status == "succeeded"
    assert Run.objects.get(pk=failing.pk).status == "failed"
    flag.write_text("")
    step_retry(run_id=failing.pk, node_id="s2")
    drain()
    step_rerun_from(run_id=failing.pk, node_id="s1")
    drain()
    assert Run.objects.get(pk=failing.pk).status == "succeeded"
    approval = definition("approvals", [{"id": "ok", "type": "approval", "config": {"message": "Go?"}}, node("x")],
                          [("ok", "x")])
    approved, _ = run_start(workflow=save(approval))
    drain()
    step_approve(run_id=approved.pk, node_id="ok")
    cancelled, _ = run_start(workflow=save(chain("cancelled", 2)))
    run_cancel(run_id=cancelled.pk)
    drain()
    assert Run.objects.get(pk=approved.pk).status == "succeeded"
    assert StepRun.objects.filter(run=cancelled, status="cancelled").count() == 2
