"""Run concurrency on the real database: each strategy, FIFO per key, other keys not held back, a finish
starting the next run in its own transaction, the recovery loop's heal, and starts racing from many
connections (threads, each with its own database session)."""

from __future__ import annotations

import threading

import pytest
from django.db import connection

from engine.core import hotpath
from engine.core.versions import version_graph
from engine.exceptions import InputsInvalid, InvalidTransition
from engine.models import Event, Run, StepRun
from engine.services.scheduler import run_cancel, run_start, step_complete, step_skip
from engine.services.workflows import workflow_save
from engine.worker.recovery import anything_due, recover_once
from tests.conftest import definition, node

pytestmark = pytest.mark.django_db(transaction=True)

USER = {"type": "object", "properties": {"user": {"type": "string"}}}


def save(slug: str, *, limit: int = 1, strategy: str = "queue", key: str | None = "{{ inputs.user }}",
         nodes: list[dict] | None = None):
    concurrency = {"limit": limit, "strategy": strategy, **({"key": key} if key is not None else {})}
    return workflow_save(definition=definition(slug, nodes or [node("a")], [], inputs=USER,
                                               concurrency=concurrency))[0]


def start(wf, user: str = "u1", **extra) -> Run:
    return run_start(workflow=wf, inputs={"user": user, **extra})[0]


def status(run) -> str:
    return Run.objects.values_list("status", flat=True).get(pk=run.pk)


def statuses(runs) -> list[str]:
    return [status(r) for r in runs]


def test_queue_holds_a_run_over_the_limit_without_queuing_its_steps():
    wf = save("cq-hold")
    first, second = start(wf), start(wf)
    assert (first.status, second.status) == ("running", "pending")
    assert second.concurrency_key == "u1" and second.started_at is None
    assert second.waiting == {"reason": "concurrency", "key": "u1",
                              "message": "waiting for a run of key 'u1' to finish"}
    assert set(StepRun.objects.filter(run=second).values_list("status", flat=True)) == {"pending"}
    event = Event.objects.get(run=second)
    assert (event.type, event.payload["reason"], event.payload["key"]) == ("run.pending", "concurrency", "u1")
    assert first.waiting is None


@pytest.mark.parametrize("finish", ["succeeded", "cancelled"])
def test_a_finish_starts_the_oldest_waiting_run_in_the_same_transaction(finish):
    wf = save(f"cq-next-{finish}")
    first, second, third = start(wf), start(wf), start(wf)
    if finish == "succeeded":
        step_complete(run_id=first.pk, node_id="a")
    else:
        run_cancel(run_id=first.pk)
    assert statuses([first, second, third]) == [finish, "running", "pending"]
    second.refresh_from_db()
    first.refresh_from_db()
    assert second.started_at >= first.finished_at
    assert StepRun.objects.get(run=second, node_id="a").status == "queued"


def test_a_failed_run_starts_the_next_one(drain):
    wf = save("cq-next-failed", nodes=[node("a", "tests.raise", retry={"max_attempts": 1})])
    runs = [start(wf) for _ in range(3)]
    assert statuses(runs) == ["running", "pending", "pending"]
    drain(recover=False)  # no recovery pass: each failure itself starts the next run
    assert statuses(runs) == ["failed"] * 3
    rows = [Run.objects.get(pk=r.pk) for r in runs]
    assert rows[1].started_at >= rows[0].finished_at and rows[2].started_at >= rows[1].finished_at


def test_queue_starts_runs_of_a_key_in_the_order_they_came(drain, tmp_path):
    log = tmp_path / "order"
    wf = save("cq-fifo", nodes=[node("a", "tests.note", kwargs={"path": str(log), "value": "{{ inputs.n }}"})])
    runs = [start(wf, n=str(i)) for i in range(5)]
    assert statuses(runs) == ["running"] + ["pending"] * 4
    drain()
    assert statuses(runs) == ["succeeded"] * 5
    assert log.read_text().split() == ["0", "1", "2", "3", "4"]
    started = [Run.objects.get(pk=r.pk).started_at for r in runs]
    assert started == sorted(started)


def test_other_keys_and_other_workflows_are_not_held_back():
    wf = save("cq-keys", limit=2)
    plain = workflow_save(definition=definition("cq-plain", [node("a")], []))[0]
    u1 = [start(wf, "u1") for _ in range(3)]
    u2 = [start(wf, "u2") for _ in range(2)]
    others = [run_start(workflow=plain)[0] for _ in range(3)]
    assert statuses(u1) == ["running", "running", "pending"]
    assert statuses(u2) == ["running", "running"]
    assert statuses(others) == ["running"] * 3
    assert {r.concurrency_key for r in others} == {None}


def test_no_key_makes_one_group_for_the_workflow():
    wf = save("cq-nokey", key=None)
    runs = [start(wf, "u1"), start(wf, "u2")]
    assert statuses(runs) == ["running", "pending"]
    assert runs[1].concurrency_key == ""
    assert runs[1].waiting["message"] == "waiting for a run of this workflow to finish"


def test_a_waiting_run_can_be_cancelled_and_is_skipped(drain):
    wf = save("cq-cancel-waiting")
    first, second, third = start(wf), start(wf), start(wf)
    run_cancel(run_id=second.pk)
    assert statuses([first, second, third]) == ["running", "cancelled", "pending"]
    assert set(StepRun.objects.filter(run=second).values_list("status", flat=True)) == {"cancelled"}
    step_complete(run_id=first.pk, node_id="a")
    assert statuses([first, second, third]) == ["succeeded", "cancelled", "running"]
    assert Run.objects.get(pk=second.pk).started_at is None


def test_a_waiting_run_refuses_step_actions():
    wf = save("cq-actions")
    start(wf)
    waiting = start(wf)
    with pytest.raises(InvalidTransition, match="has not started"):
        step_skip(run_id=waiting.pk, node_id="a")
    assert status(waiting) == "pending"


def test_cancel_newest_records_the_new_run_cancelled_and_never_started():
    wf = save("cq-newest", limit=2, strategy="cancel_newest")
    runs = [start(wf) for _ in range(3)]
    assert statuses(runs) == ["running", "running", "cancelled"]
    newest = Run.objects.get(pk=runs[2].pk)
    assert newest.started_at is None and newest.finished_at is not None
    assert "not started: 2 run(s) of key 'u1' already running" in newest.error
    assert "cancel_newest" in newest.error
    assert set(StepRun.objects.filter(run=newest).values_list("status", flat=True)) == {"cancelled"}
    assert set(Event.objects.filter(run=newest).values_list("type", flat=True)) == {"run.cancelled", "step.cancelled"}
    assert start(wf, "u2").status == "running"  # another key has its own room


def test_cancel_in_progress_cancels_the_earliest_started_runs():
    wf = save("cq-inprogress", limit=2, strategy="cancel_in_progress")
    runs = [start(wf) for _ in range(4)]
    assert statuses(runs) == ["cancelled", "cancelled", "running", "running"]
    first = Run.objects.get(pk=runs[0].pk)
    assert first.error.startswith(f"cancelled by run {runs[2].pk}: at most 2 run(s) of key 'u1' at once")
    assert Run.objects.get(pk=runs[1].pk).error.startswith(f"cancelled by run {runs[3].pk}")
    cancelled = Event.objects.get(run=first, type="run.cancelled")
    assert cancelled.actor == "concurrency"
    assert start(wf, "u2").status == "running" and statuses(runs[2:]) == ["running", "running"]


def test_a_key_that_fails_to_render_refuses_the_start_naming_the_field():
    wf = save("cq-badkey", key="{{ inputs.user.name.first }}")
    with pytest.raises(InputsInvalid) as caught:
        run_start(workflow=wf, inputs={"user": "u1"})
    assert caught.value.details[0]["path"] == "concurrency.key"
    assert "concurrency key failed to render" in caught.value.message
    assert not Run.objects.filter(workflow=wf).exists()
    long_key = save("cq-longkey", key="{{ inputs.user * 300 }}")
    with pytest.raises(InputsInvalid, match="at most 200"):
        run_start(workflow=long_key, inputs={"user": "u1"})


def test_the_recovery_loop_starts_a_waiting_run_whose_group_has_room():
    wf = save("cq-heal", limit=1)
    first, second, third = start(wf), start(wf), start(wf)
    assert not anything_due()
    # A finish that did not start the next run (as a process without run concurrency, or a hand-made fix, would
    # leave it): the first run's row alone moves on.
    Run.objects.filter(pk=first.pk).update(status="succeeded")
    assert anything_due()
    assert recover_once() >= 1
    assert statuses([second, third]) == ["running", "pending"]
    assert not anything_due()
    assert StepRun.objects.get(run=second, node_id="a").status == "queued"
    assert Event.objects.filter(run=second, type="run.running", actor="recovery").exists()


def test_the_one_statement_start_and_finish_stay_for_workflows_without_queued_runs():
    plain = workflow_save(definition=definition("cq-fast", [node("a")], []))[0]
    queued, newest = save("cq-slow"), save("cq-newest-fast", strategy="cancel_newest")
    assert hotpath.finishes_run(version_graph(plain.current_version), "a")
    assert not hotpath.finishes_run(version_graph(queued.current_version), "a")
    assert hotpath.finishes_run(version_graph(newest.current_version), "a")


def test_a_finish_on_a_worker_starts_the_next_run(drain):
    wf = save("cq-worker", limit=2)
    runs = [start(wf) for _ in range(6)]
    drain()
    assert statuses(runs) == ["succeeded"] * 6
    for run in Run.objects.filter(workflow=wf):
        overlapping = Run.objects.filter(workflow=wf, started_at__lte=run.started_at,
                                         finished_at__gt=run.started_at).count()
        assert overlapping <= 2


# -- starts racing from many database sessions ----------------------------------------------------


def race_starts(wf, n: int = 20) -> list[Run]:
    """``n`` threads, each with its own connection, start a run of ``wf`` at the same moment."""
    barrier = threading.Barrier(n)
    runs: list = [None] * n
    errors: list = []

    def target(i):
        try:
            barrier.wait(timeout=10)
            runs[i] = start(wf)
        except BaseException as exc:  # reported in the test's thread
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=target, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors, errors
    return runs


@pytest.mark.parametrize(("strategy", "expected"), [
    ("queue", {"running": 2, "pending": 18}),
    ("cancel_newest", {"running": 2, "cancelled": 18}),
    ("cancel_in_progress", {"running": 2, "cancelled": 18}),
])
def test_twenty_starts_at_the_same_moment_never_run_more_than_the_limit(strategy, expected):
    wf = save(f"cq-race-{strategy}", limit=2, strategy=strategy)
    runs = race_starts(wf)
    counts: dict = {}
    for s in statuses(runs):
        counts[s] = counts.get(s, 0) + 1
    assert counts == expected
    if strategy == "queue":  # FIFO: the waiting runs start in the order their starts reached the group
        waiting = Run.objects.filter(workflow=wf, status="pending").order_by("created_at")
        for run in waiting[:5]:
            running = Run.objects.filter(workflow=wf, status="running").first()
            step_complete(run_id=running.pk, node_id="a")
            assert status(run) == "running"
        assert Run.objects.filter(workflow=wf, status="running").count() == 2
