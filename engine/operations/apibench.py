"""``bench api``: response times of the API and pages a team reads, on the current database (docs/benchmarks.md).

Each endpoint is requested in this process through Django's request handler (middleware, session
authentication, DRF, templates: all but the socket), by a signed-in user; a few requests warm it up, then
``requests`` are timed one after another. Run it on a seeded database (``bench seed``): it reads the seeded
workflows and the newest 1,000-step run.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass

from django.db import connection

from engine.observability.run_tally import run_tally_take
from engine.operations.heap import freeze_startup_heap
from engine.operations.seed import wide_run_id
from engine.operations.seed_workflows import WIDE_SLUG, WORKFLOWS

WARM_UP = 5


@dataclass(frozen=True)
class Endpoint:
    name: str
    path: str
    target_ms: float


@dataclass
class Timing:
    endpoint: Endpoint
    p50_ms: float
    p95_ms: float
    max_ms: float
    queries: int  # SQL statements of one request
    cpu_p50_ms: float = 0.0  # this process's CPU time a request (Django, DRF, templates): what load does not inflate

    @property
    def met(self) -> bool:
        return self.p95_ms < self.endpoint.target_ms


def endpoints() -> list[Endpoint]:
    """What issue 20 sets targets for: run lists (any filter), a 1,000-step run's detail and timeline, a
    workflow's analytics, /metrics and the queues, each as the API and as the page where there is one."""
    run = wide_run_id()
    if run is None:
        raise RuntimeError(f"no run of {WIDE_SLUG}: seed the database first (manage.py bench seed --runs N)")
    workflow = WORKFLOWS[0][0]
    lists = {"": "unfiltered", f"?workflow={workflow}": "by workflow", "?status=failed": "by status",
             "?trigger=webhook": "by trigger"}
    out = [Endpoint(f"run list API, {label}", f"/api/runs/{query}", 50) for query, label in lists.items()]
    out += [Endpoint(f"run list page, {label}", f"/runs/{query}", 50) for query, label in lists.items()]
    out += [
        Endpoint("1,000-step run detail API", f"/api/runs/{run}/", 100),
        Endpoint("1,000-step run page", f"/runs/{run}/", 100),
        Endpoint("1,000-step run timeline API", f"/api/runs/{run}/timeline/", 150),
        Endpoint("workflow analytics API (30 days)", f"/api/workflows/{workflow}/analytics/", 200),
        Endpoint("workflow analytics page (30 days)", f"/workflows/{workflow}/", 200),
        Endpoint("/metrics", "/metrics", 100),
        Endpoint("queues API", "/api/queues/", 50),
        Endpoint("queues page", "/queues/", 50),
    ]
    return out


def signed_in_client():
    from django.contrib.auth import get_user_model
    from django.test import Client

    user, _ = get_user_model().objects.get_or_create(username="bench-api", defaults={"is_superuser": True,
                                                                                     "is_staff": True})
    client = Client(SERVER_NAME="localhost")
    client.force_login(user)
    return client


def _pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def statements_of(client, path: str) -> list[tuple[str, object]]:
    """The SQL statements (with their parameters) that one request of ``path`` runs."""
    seen: list[tuple[str, object]] = []

    def record(execute, sql, params, many, context):
        seen.append((sql, params))
        return execute(sql, params, many, context)

    with connection.execute_wrapper(record):
        response = client.get(path)
    if response.status_code != 200:
        raise RuntimeError(f"{path} answered {response.status_code}")
    return seen


def api_measure(*, requests: int = 200, only: list[Endpoint] | None = None) -> list[Timing]:
    """p50, p95 and max of ``requests`` requests of each endpoint, one after another, with the heap frozen as the
    web server freezes it (config/asgi.py) and a run tally taken as the recovery loop takes one (weft_runs)."""
    freeze_startup_heap()
    run_tally_take()
    client = signed_in_client()
    timings = []
    for endpoint in only or endpoints():
        for _ in range(WARM_UP):
            response = client.get(endpoint.path)
            if response.status_code != 200:
                raise RuntimeError(f"{endpoint.path} answered {response.status_code}")
        statements = statements_of(client, endpoint.path)
        took, cpu = [], []
        for _ in range(requests):
            t0, c0 = time.perf_counter(), time.process_time()
            client.get(endpoint.path)
            took.append((time.perf_counter() - t0) * 1000)
            cpu.append((time.process_time() - c0) * 1000)
        timings.append(Timing(endpoint, round(statistics.median(took), 2), round(_pct(took, 95), 2),
                              round(max(took), 2), len(statements), round(statistics.median(cpu), 2)))
    return timings
