"""Run concurrency on two real ``runworkers`` processes, as two hosts would run them: runs started at the same
moment from many database sessions never run more than the limit at once, and each finish, on whichever host,
starts the next waiting run."""

from __future__ import annotations

import pytest

from engine.models import Attempt, Run
from engine.services.workflows import workflow_save
from tests.conftest import Workers, definition, finished, node, wait_for
from tests.engine.test_run_concurrency import race_starts

pytestmark = [pytest.mark.workers, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def two_hosts(worker_env):
    hosts = [Workers(worker_env), Workers(worker_env)]
    yield hosts
    for w in hosts:
        w.stop()


def most_at_once(intervals: list[tuple]) -> int:
    """The most intervals (start, end) open at one moment."""
    return max(sum(1 for s, e in intervals if s <= start < e) for start, _ in intervals)


def test_twenty_runs_on_two_hosts_never_run_more_than_the_limit(two_hosts):
    wf = workflow_save(definition=definition(
        "cq-hosts", [node("a", "tests.sleep", kwargs={"seconds": 0.3}, queue="fast"),
                     node("b", "tests.sleep", kwargs={"seconds": 0.1})], [("a", "b")],
        inputs={"type": "object"}, concurrency={"key": "{{ inputs.user }}", "limit": 2}))[0]
    for w in two_hosts:
        w.start(recovery=w is two_hosts[0])
    runs = race_starts(wf, 20)
    done = [wait_for(finished(r.pk), timeout=60, message=f"run {r.pk}") for r in runs]
    assert [r.status for r in done] == ["succeeded"] * 20, [r.error for r in done]
    assert most_at_once([(r.started_at, r.finished_at) for r in done]) == 2
    attempts = Attempt.objects.filter(step__run__workflow=wf).values_list("started_at", "finished_at")
    assert len(attempts) == 40 and most_at_once(list(attempts)) <= 2
    pids = {int(w.rsplit(":", 1)[1]) for w in Attempt.objects.filter(step__run__workflow=wf)
            .values_list("worker", flat=True)}
    assert all(pids & set(host.all_pids()) for host in two_hosts)  # both hosts ran steps and finished runs
    by_arrival = Run.objects.filter(workflow=wf).order_by("created_at", "id").values_list("started_at", flat=True)
    assert list(by_arrival) == sorted(by_arrival)  # FIFO: they started in the order they reached the group
