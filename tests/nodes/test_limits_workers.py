"""Limits on two real ``runworkers`` processes, against a loopback server that records every request's time and
how many were in flight: concurrency, rate, a 429's pause, and round robin across keys."""

from __future__ import annotations

import pytest

from engine.models import LimitBucket, Run
from engine.services.limits import limit_create
from engine.services.scheduler import run_start
from engine.services.workflows import workflow_save
from tests.conftest import Workers, definition, finished, wait_for
from tests.fakes.servers import InFlightServer

pytestmark = [pytest.mark.workers, pytest.mark.django_db(transaction=True)]

IN_FLIGHT_S = 0.3  # a request sent before a pause was recorded may reach the server this much later


@pytest.fixture
def two_hosts(worker_env, allow_loopback):
    """Two runworkers processes, as two hosts would run them (one runs the recovery loop)."""
    hosts = [Workers(worker_env), Workers(worker_env)]
    yield hosts
    for w in hosts:
        w.stop()


@pytest.fixture
def server(request):
    s = InFlightServer(hold_s=getattr(request, "param", 0.0)).start()
    yield s
    s.stop()


def calls_workflow(slug: str, url: str, n: int, limits: list[dict], *, key: str = "k", retry=None) -> dict:
    """``n`` http steps (roots, half on each queue), each a GET of ``url`` under the query's key."""
    nodes = [{"id": f"c{i}", "type": "http", "queue": "fast" if i % 2 else "default", "limits": limits,
              "config": {"url": url, "query": {"key": key, "tag": f"{{{{ inputs.tag }}}}-{i}"}},
              **({"retry": retry} if retry else {})} for i in range(n)]
    return definition(slug, nodes, [], inputs={"type": "object"})


def map_workflow(slug: str, url: str, limits: list[dict]) -> dict:
    """One http node mapped over the run's ``items``: each item a step of its own that takes ``limits``."""
    each = {"id": "each", "type": "http", "limits": limits, "for_each": "{{ inputs.items }}", "max_parallel": 50,
            "config": {"url": url, "query": {"key": "k", "tag": "{{ inputs.tag }}-{{ item }}"}}}
    return definition(slug, [each], [], inputs={"type": "object"})


def run_all(hosts, workflow, inputs_list: list[dict]) -> list[Run]:
    for w in hosts:
        w.start(recovery=w is hosts[0])
    runs = [run_start(workflow=workflow, inputs=inputs)[0] for inputs in inputs_list]
    done = [wait_for(finished(r.pk), timeout=240, message=f"run {r.pk}") for r in runs]
    assert [r.status for r in done] == ["succeeded"] * len(done), [r.error for r in done]
    return done


@pytest.mark.parametrize("server", [0.25], indirect=True)
def test_concurrency_3_never_has_more_than_3_in_flight(two_hosts, server):
    limit_create(name="three", concurrency=3)
    wf = workflow_save(definition=map_workflow("lim-c3", server.url, [{"name": "three"}]))[0]
    run_all(two_hosts, wf, [{"tag": f"r{i}", "items": list(range(12))} for i in range(5)])
    assert len(server.calls) == 60
    assert server.max_in_flight == 3  # 8 workers were there to take more


def test_rate_10_per_second_has_no_window_with_more_than_10(two_hosts, server):
    limit_create(name="ten", rate={"limit": 10, "period_s": 1, "burst": 0})
    wf = workflow_save(definition=map_workflow("lim-r10", server.url, [{"name": "ten"}]))[0]
    run_all(two_hosts, wf, [{"tag": f"r{i}", "items": list(range(20))} for i in range(3)])
    starts = sorted(c["start"] for c in server.calls)
    assert len(starts) == 60
    busiest = max(sum(1 for s in starts if t <= s < t + 1.0) for t in starts)
    assert busiest <= 10, busiest
    per_s = 59 / (starts[-1] - starts[0])
    assert per_s > 6, per_s  # and the rate is served, not starved: 10 per 1.05 s at best


@pytest.mark.parametrize("server", [0.05], indirect=True)
def test_a_429_with_retry_after_pauses_the_key_for_everyone(two_hosts, server):
    limit_create(name="provider", concurrency=4)
    server.throttle_first("k", 2)
    wf = workflow_save(definition=calls_workflow("lim-429", server.url, 8, [{"name": "provider", "key": "k"}],
                                                 retry={"max_attempts": 3, "backoff_s": 0}))[0]
    run_all(two_hosts, wf, [{"tag": "r"}])
    assert len([c for c in server.calls if c["status"] == 429]) == 1
    assert len([c for c in server.calls if c["status"] == 200]) == 8  # the throttled step ran again
    # The pause, as the database recorded it: from when the worker that got the 429 set it, for 2 s. A request
    # a sibling had already sent may still arrive just after that; none may start later within the pause.
    until = LimitBucket.objects.get(limit__name="provider", key="k").paused_until.timestamp()
    paused_at = until - 2.0
    inside = [round(c["start"] - paused_at, 3) for c in server.calls if paused_at + IN_FLIGHT_S < c["start"] < until]
    from engine.models import Attempt
    starts = [(a.step.node_id, a.number, round(a.started_at.timestamp() - paused_at, 3))
              for a in Attempt.objects.select_related("step")]
    assert inside == [], ([(c["tag"], c["status"], round(c["start"] - paused_at, 3)) for c in server.calls], starts)
    assert any(c["start"] >= until for c in server.calls)  # the key went on after the pause


@pytest.mark.parametrize("server", [0.05], indirect=True)
def test_two_tenants_are_served_alternately(two_hosts, server):
    limit_create(name="provider", concurrency=1)
    limit_create(name="tenant", concurrency=1)
    limits = [{"name": "provider"}, {"name": "tenant", "key": "{{ inputs.tag }}"}]
    wf = workflow_save(definition=calls_workflow("lim-rr", server.url, 8, limits))[0]
    for w in two_hosts:
        w.start(recovery=w is two_hosts[0])
    runs = [run_start(workflow=wf, inputs={"tag": tenant})[0] for tenant in ("a", "b")]
    for r in runs:
        assert wait_for(finished(r.pk), timeout=240, message="tenant run").status == "succeeded"
    order = [c["tag"].split("-")[0] for c in sorted(server.calls, key=lambda c: c["start"])]
    assert order == ["a", "b"] * 8, order
