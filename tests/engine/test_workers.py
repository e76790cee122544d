"""Acceptance tests with real django-q2 clusters (``manage.py runworkers``) in subprocesses."""

from __future__ import annotations

import statistics
import time

import pytest

from engine.models import Attempt, Run, StepRun
from engine.services.scheduler import run_cancel, run_start, step_retry
from engine.services.workflows import workflow_save
from tests.conftest import chain, definition, finished, node, wait_for

pytestmark = [pytest.mark.workers, pytest.mark.django_db(transaction=True)]


def test_30_step_chain_completes_on_real_workers(workers, tmp_path):
    log = tmp_path / "log"
    wf = workflow_save(definition=chain("chain30", 30, lambda i: node(f"s{i}", "tests.count",
                                                                     kwargs={"path": str(log)})))[0]
    workers.start()
    run, _ = run_start(workflow=wf)
    run = wait_for(finished(run.pk), timeout=120, message="30-step chain")
    assert run.status == "succeeded"
    assert log.read_text().split() == [f"s{i}" for i in range(1, 31)]


def test_fan_out_1_200_1_completes(workers):
    nodes = [node("root")] + [node(f"m{i}", queue="fast") for i in range(200)] + [node("join")]
    edges = [("root", f"m{i}") for i in range(200)] + [(f"m{i}", "join") for i in range(200)]
    wf = workflow_save(definition=definition("fan200", nodes, edges))[0]
    workers.start()
    run, _ = run_start(workflow=wf)
    run = wait_for(finished(run.pk), timeout=180, message="fan-out run")
    assert run.status == "succeeded"
    assert StepRun.objects.filter(run=run, status="succeeded").count() == 202
    assert Attempt.objects.filter(step__run=run).count() == 202


def test_retry_step_12_of_30_reruns_only_what_never_finished(workers, tmp_path):
    flag, log = tmp_path / "flag", tmp_path / "log"

    def make(i):
        if i == 12:
            return node("s12", "tests.fail_until_flag", kwargs={"flag": str(flag)}, retry={"max_attempts": 1})
        return node(f"s{i}", "tests.count", kwargs={"path": str(log)})

    wf = workflow_save(definition=chain("retry30", 30, make))[0]
    workers.start()
    run, _ = run_start(workflow=wf)
    run = wait_for(finished(run.pk), timeout=120, message="run to fail")
    assert run.status == "failed"
    steps = dict(StepRun.objects.filter(run=run).values_list("node_id", "status"))
    assert steps["s12"] == "failed"
    assert all(steps[f"s{i}"] == "upstream_failed" for i in range(13, 31))
    flag.write_text("fixed")
    step_retry(run_id=run.pk, node_id="s12", actor="operator")
    run = wait_for(finished(run.pk), timeout=120, message="retried run")
    assert run.status == "succeeded"
    executed = log.read_text().split()
    assert executed == [f"s{i}" for i in range(1, 31) if i != 12]  # steps 1-11 ran exactly once
    assert (tmp_path / "flag.count").read_text().split() == ["s12", "s12"]


def _fast_latencies(n: int, tmp_path) -> list[float]:
    """Start n one-step runs on the fast queue; seconds from start to the step's finish."""
    wf = workflow_save(definition=definition("fast1", [node("f", queue="fast")], []))[0]
    latencies = []
    for _ in range(n):
        t0 = time.time()
        run, _ = run_start(workflow=wf)
        wait_for(finished(run.pk), timeout=30, interval=0.01, message="fast run")
        step = StepRun.objects.get(run=run)
        latencies.append(step.finished_at.timestamp() - t0)
    return latencies


def test_long_step_on_slow_does_not_delay_fast(workers, tmp_path):
    workers.start()
    idle = _fast_latencies(15, tmp_path)
    slow = workflow_save(definition=definition("slow1", [node("long", "tests.sleep", kwargs={"seconds": 30},
                                                               queue="slow")], []))[0]
    slow_run, _ = run_start(workflow=slow)
    wait_for(lambda: StepRun.objects.filter(run=slow_run, status="running").exists(), timeout=30,
             message="slow step to start")
    busy = _fast_latencies(15, tmp_path)
    assert StepRun.objects.get(run=slow_run).status == "running"
    idle_median, busy_median = statistics.median(idle), statistics.median(busy)
    print(f"fast-step latency median: idle {idle_median * 1000:.0f} ms, slow saturated {busy_median * 1000:.0f} ms")
    # 1.5x of idle, with 50 ms of slack for scheduler noise on a 2-core machine
    assert busy_median <= idle_median * 1.5 + 0.05


def test_heartbeat_keeps_a_step_that_outlives_its_lease(workers, worker_env):
    lease_s = int(worker_env["WEFT_LEASE_S"])
    wf = workflow_save(definition=definition("outlive", [node("long", "tests.sleep",
                                                               kwargs={"seconds": 3 * lease_s})], []))[0]
    workers.start()
    run, _ = run_start(workflow=wf)
    step = wait_for(lambda: StepRun.objects.filter(run=run, status="running").first(), timeout=30,
                    message="the long step to start")
    leases = set()
    while (row := StepRun.objects.filter(pk=step.pk).values("status", "lease_expires_at").get())["status"] == "running":
        leases.add(row["lease_expires_at"])
        time.sleep(0.2)
    run = wait_for(finished(run.pk), timeout=30, message="the long step's run")
    assert run.status == "succeeded"
    # one attempt: recovery never saw an expired lease, although the step ran three leases long
    assert list(Attempt.objects.filter(step=step).values_list("outcome", flat=True)) == ["succeeded"]
    assert len(leases) >= 4, f"lease renewed only {len(leases) - 1} times"
    assert (max(leases) - min(leases)).total_seconds() >= lease_s


def test_cancel_stops_a_running_step_at_its_next_journal_call(workers, tmp_path):
    log = tmp_path / "log"
    wf = workflow_save(definition=definition("cancel-running", [
        node("loop", "tests.journal_loop", kwargs={"path": str(log), "n": 200, "pause": 0.1}), node("after")],
        [("loop", "after")]))[0]
    workers.start()
    run, _ = run_start(workflow=wf)
    wait_for(lambda: log.exists() and len(log.read_text().split()) >= 3, timeout=60, message="the loop to run")
    run_cancel(run_id=run.pk, actor="operator")
    cancelled_at = time.monotonic()
    step = wait_for(lambda: StepRun.objects.filter(run=run, node_id="loop", status="cancelled").first(), timeout=20,
                    message="the running step to stop")
    print(f"\nrunning step stopped {time.monotonic() - cancelled_at:.2f} s after the cancel")
    calls = len(log.read_text().split())
    time.sleep(1)
    assert len(log.read_text().split()) == calls < 200, "the step kept calling after it was cancelled"
    assert list(Attempt.objects.filter(step=step).values_list("outcome", flat=True)) == ["cancelled"]
    assert StepRun.objects.get(run=run, node_id="after").status == "cancelled"
    assert Run.objects.get(pk=run.pk).status == "cancelled"
