"""Benchmark workloads for ``manage.py bench`` (see docs/benchmarks.md).

Each workload runs real runs on real worker processes against the configured
Postgres and returns measured figures; the command prints medians with min and
max, and ratios to the commit floor measured in the same invocation.
"""

from __future__ import annotations

import contextvars
import os
import signal
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field, replace
from functools import partial

from django.conf import settings
from django.db import connection

import weft
from engine.core.dbretry import connect
from engine.models import Run, Schedule, StepRun
from engine.operations.benchcost import cost_per_step, cost_read
from engine.operations.health import VACUUMED_TABLES
from engine.operations.seed import history_seed
from engine.services.scheduler import run_cancel, run_start
from engine.services.workflows import workflow_save
from engine.states import RUN_TERMINAL

WORKLOADS = ("floor", "start", "chain", "fanout", "many", "map", "limited", "isolation", "recovery", "idle",
             "schedules", "prune")
# The durability of the workflows a sample saves (run_workload): strict ones are named bench-<x>, relaxed ones
# bench-<x>-relaxed, so that switching does not make a new version of the same workflow each time.
_DURABILITY: contextvars.ContextVar[str] = contextvars.ContextVar("bench_durability", default="strict")


@weft.task(name="bench.sleep")
def bench_sleep(ctx, seconds: float = 1.0):
    """Sleeps, noticing a cancelled run (or a lost lease) within 0.2 s."""
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        ctx.check_live()
        time.sleep(min(left, 0.2))
    return {"slept": seconds}


@dataclass
class Sample:
    per_step_ms: float | None = None
    steps_per_s: float | None = None
    extra: dict = field(default_factory=dict)
    steps: int | None = None  # the steps a workload with a per-step time ran; its costs below are per one of them
    commits_per_step: float | None = None  # this database's transactions that wrote (benchcost.py)
    wal_bytes_per_step: float | None = None
    workers_cpu_ms_per_step: float | None = None  # the runworkers process tree
    postgres_cpu_ms_per_step: float | None = None  # this database's server processes and the shared ones
    bench_cpu_ms_per_step: float | None = None  # this process: starting runs, polling for their end


def summary(values: list[float]) -> dict | None:
    values = [v for v in values if v is not None]
    if not values:
        return None
    return {"median": round(statistics.median(values), 3), "min": round(min(values), 3),
            "max": round(max(values), 3)}


# -- the commit floor ---------------------------------------------------------------------------


def floor_ms(n: int = 2000) -> float:
    """Insert one row and commit, n times, on one connection: milliseconds per commit."""
    with connect() as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS weft_bench_floor (id bigserial PRIMARY KEY, at timestamptz)")
        conn.commit()
        t0 = time.perf_counter()
        for _ in range(n):
            conn.execute("INSERT INTO weft_bench_floor (at) VALUES (now())")
            conn.commit()
        elapsed = time.perf_counter() - t0
        conn.execute("TRUNCATE weft_bench_floor")
        conn.commit()
    return elapsed * 1000 / n


# -- workers ------------------------------------------------------------------------------------


class BenchWorkers:
    """``manage.py runworkers`` in its own process group, stopped at the end."""

    def __init__(self):
        self.proc: subprocess.Popen | None = None

    def __enter__(self) -> BenchWorkers:
        env = dict(os.environ)
        modules = [m for m in env.get("WEFT_TASK_MODULES", "").split(",") if m]
        env["WEFT_TASK_MODULES"] = ",".join([*modules, "engine.operations.bench"])
        manage = os.path.join(settings.BASE_DIR, "manage.py")
        self.proc = subprocess.Popen([sys.executable, manage, "runworkers"], env=env, start_new_session=True,
                                     stdout=subprocess.DEVNULL)
        return self

    def __exit__(self, *exc) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


# -- helpers ------------------------------------------------------------------------------------


def _save(slug: str, nodes: list[dict], edges: list[tuple[str, str]]):
    durability = _DURABILITY.get()
    if durability != "strict":
        slug = f"{slug}-{durability}"
    definition = {"name": slug, "slug": slug, "nodes": nodes, "durability": durability,
                  "edges": [{"source": a, "target": b} for a, b in edges]}
    return workflow_save(definition=definition, note="bench")[0]


def _noop(node_id: str, queue: str = "default") -> dict:
    return {"id": node_id, "type": "noop", "queue": queue}


def _wait(run_ids: list, timeout: float = 600) -> list[Run]:
    """The runs, once all have finished. The figures come from their timestamps, so how often this looks only
    decides how much load the looking adds: one count every 20 ms, not every run's row."""
    deadline = time.monotonic() + timeout
    unfinished = Run.objects.filter(pk__in=run_ids).exclude(status__in=RUN_TERMINAL)
    while time.monotonic() < deadline:
        if not unfinished.exists():
            runs = list(Run.objects.filter(pk__in=run_ids))
            failed = [str(r.pk) for r in runs if r.status != "succeeded"]
            if failed:
                raise RuntimeError(f"bench runs did not succeed: {failed[:5]}")
            return runs
        time.sleep(0.02)
    raise RuntimeError(f"bench runs still unfinished after {timeout:g} s")


def _wall_s(runs: list[Run]) -> float:
    return (max(r.finished_at for r in runs) - min(r.created_at for r in runs)).total_seconds()


def _stepped(steps: int, wall: float) -> Sample:
    """A sample of ``steps`` steps run in ``wall`` seconds: its per-step time and rate, and its step count (for
    its cost per step)."""
    return Sample(per_step_ms=wall * 1000 / steps, steps_per_s=steps / wall, extra={"wall_s": wall}, steps=steps)


# -- workloads ----------------------------------------------------------------------------------


def start(n: int = 5000, width: int = 50) -> Sample:
    """Validate, save and start a 5,000-node DAG (layers of 50): the time until its first steps are queued."""
    nodes = [_noop(f"n{i}") for i in range(n)]
    edges = [(f"n{i - width}", f"n{i}") for i in range(width, n)]
    t0 = time.perf_counter()
    wf = _save(f"bench-start-{time.time_ns()}", nodes, edges)
    t1 = time.perf_counter()
    run, _ = run_start(workflow=wf)
    t2 = time.perf_counter()
    run_cancel(run_id=run.pk, actor="bench")
    return Sample(extra={"validate_save_s": round(t1 - t0, 3), "start_s": round(t2 - t1, 3),
                         "total_s": round(t2 - t0, 3)})


def chain(n: int = 30) -> Sample:
    wf = _save("bench-chain", [_noop(f"s{i}") for i in range(n)], [(f"s{i}", f"s{i + 1}") for i in range(n - 1)])
    run, _ = run_start(workflow=wf)
    wall = _wall_s(_wait([run.pk]))
    return _stepped(n, wall)


def fanout(width: int = 1000) -> Sample:
    nodes = [_noop("root")] + [_noop(f"m{i}") for i in range(width)] + [_noop("join")]
    edges = [("root", f"m{i}") for i in range(width)] + [(f"m{i}", "join") for i in range(width)]
    run, _ = run_start(workflow=_save("bench-fanout", nodes, edges))
    wall = _wall_s(_wait([run.pk]))
    steps = width + 2
    return _stepped(steps, wall)


def many(runs: int = 200, length: int = 5) -> Sample:
    wf = _save("bench-many", [_noop(f"s{i}") for i in range(length)],
               [(f"s{i}", f"s{i + 1}") for i in range(length - 1)])
    ids = [run_start(workflow=wf)[0].pk for _ in range(runs)]
    wall = _wall_s(_wait(ids))
    steps = runs * length
    return _stepped(steps, wall)


def map_items(items: int = 5000) -> Sample:
    """One run whose one node maps over 5,000 items (no-op steps): the items' steps per second."""
    wf = _save("bench-map", [{**_noop("each"), "for_each": "{{ inputs.xs }}"}], [])
    run, _ = run_start(workflow=wf, inputs={"xs": list(range(items))})
    wall = _wall_s(_wait([run.pk]))
    return _stepped(items, wall)


def limited(runs: int = 100, length: int = 3, concurrency: int = 4) -> Sample:
    """``many`` with every step taking the limit ``bench-limited`` (``concurrency`` at once, one key per run's
    parity): each step waits for admission, and a finished step's worker admits the next."""
    from engine.models import Limit

    Limit.objects.update_or_create(name="bench-limited", defaults={"concurrency": concurrency, "rate_limit": None,
                                                                   "rate_period_s": None, "rate_burst": 0})
    limits = [{"name": "bench-limited", "key": "{{ inputs.k }}"}]
    wf = _save("bench-limited", [{**_noop(f"s{i}"), "limits": limits} for i in range(length)],
               [(f"s{i}", f"s{i + 1}") for i in range(length - 1)])
    ids = [run_start(workflow=wf, inputs={"k": str(i % 2)})[0].pk for i in range(runs)]
    wall = _wall_s(_wait(ids))
    steps = runs * length
    return _stepped(steps, wall)


def _fast_latencies(count: int) -> list[float]:
    wf = _save("bench-fast", [_noop("f", queue="fast")], [])
    ids = []
    for _ in range(count):
        ids.append(run_start(workflow=wf)[0].pk)
        time.sleep(0.01)
    runs = {r.pk: r for r in _wait(ids)}
    finished = dict(StepRun.objects.filter(run_id__in=ids).values_list("run_id", "finished_at"))
    return sorted((finished[i] - runs[i].created_at).total_seconds() * 1000 for i in ids)


def _pct(values: list[float], p: float) -> float:
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def isolation(count: int = 500) -> Sample:
    idle = _fast_latencies(count)
    slow_workers = settings.WEFT_QUEUES.get("slow", {}).get("workers", 1)
    hog = _save("bench-slow", [{"id": "hog", "type": "python", "queue": "slow",
                                "config": {"function": "bench.sleep", "kwargs": {"seconds": 3600}}}], [])
    hogs = [run_start(workflow=hog)[0].pk for _ in range(slow_workers * 2)]
    try:
        deadline = time.monotonic() + 60
        while StepRun.objects.filter(run_id__in=hogs, status="running").count() < slow_workers:
            if time.monotonic() > deadline:
                raise RuntimeError("slow queue did not saturate")
            time.sleep(0.05)
        busy = _fast_latencies(count)
    finally:
        for run_id in hogs:
            run_cancel(run_id=run_id, actor="bench")
    extra = {"idle_p50_ms": _pct(idle, 50), "idle_p99_ms": _pct(idle, 99), "p50_ms": _pct(busy, 50),
             "p99_ms": _pct(busy, 99)}
    extra["p99_ratio_to_idle"] = extra["p99_ms"] / extra["idle_p99_ms"]
    return Sample(extra={k: round(v, 3) for k, v in extra.items()})


def recovery() -> Sample:
    wf = _save("bench-recovery", [{"id": "victim", "type": "python", "queue": "default",
                                   "config": {"function": "bench.sleep", "kwargs": {"seconds": 1}}}], [])
    run, _ = run_start(workflow=wf)
    deadline = time.monotonic() + 60
    while True:
        step = StepRun.objects.filter(run=run, status="running", attempt=1).first()
        if step:
            break
        if time.monotonic() > deadline:
            raise RuntimeError("victim step did not start")
        time.sleep(0.01)
    time.sleep(0.2)
    os.kill(int(step.worker.rsplit(":", 1)[1]), signal.SIGKILL)
    killed = time.time()
    done = _wait([run.pk], timeout=120)[0]
    step = StepRun.objects.get(run=done)
    return Sample(extra={"recovery_s": round(step.finished_at.timestamp() - killed, 3),
                         "lease_s": settings.WEFT_LEASE_S, "step_duration_s": 1})


def idle(seconds: float = 10.0) -> Sample:
    """Transactions per second committed by idle workers of every queue (pg_stat_database)."""

    def commits() -> int:
        with connection.cursor() as cur:
            cur.execute("SELECT pg_stat_clear_snapshot()")
            cur.execute("SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()")
            return cur.fetchone()[0]

    time.sleep(2)
    before = commits()
    time.sleep(seconds)
    after = commits()
    return Sample(extra={"idle_tx_per_s": round((after - before - 2) / seconds, 2)})


def schedules(idle_count: int = 1000, firing: int = 5, seconds: float = 10.0) -> Sample:
    """Firing lag (a run's creation after its fire time) of ``firing`` every-second schedules over ``seconds``;
    and the transactions per second of idle workers, as ``idle`` measures them, without and with ``idle_count``
    schedules whose next fire is a day away."""
    from datetime import timedelta

    from django.utils import timezone

    from engine.services.schedules import schedule_create

    wf = _save("bench-schedules", [_noop("a", "fast")], [])
    Schedule.objects.filter(workflow=wf).delete()
    try:
        without = idle(seconds).extra["idle_tx_per_s"]
        for _ in range(idle_count):
            schedule_create(workflow=wf.slug, interval_s=86_400)
        with_idle = idle(seconds).extra["idle_tx_per_s"]
        Schedule.objects.filter(workflow=wf).delete()
        start_at = timezone.now().replace(microsecond=0) + timedelta(seconds=2)
        made = [schedule_create(workflow=wf.slug, interval_s=1, start_at=start_at, overlap="allow_all").pk
                for _ in range(firing)]
        time.sleep(2 + seconds)
        Schedule.objects.filter(pk__in=made).update(paused=True)
    finally:
        Schedule.objects.filter(workflow=wf).delete()
    runs = list(Run.objects.filter(workflow=wf, trigger__kind="schedule", created_at__gte=start_at))
    _wait([r.pk for r in runs], timeout=120)
    from datetime import datetime

    lags = sorted((r.created_at - datetime.fromisoformat(r.trigger["scheduled_for"])).total_seconds() * 1000
                  for r in runs)
    extra = {"idle_tx_per_s": with_idle, "idle_tx_per_s_without_schedules": without,
             "idle_schedules": idle_count, "fires": len(runs)}
    if lags:
        extra.update({"lag_median_ms": round(statistics.median(lags), 1), "lag_p99_ms": round(_pct(lags, 99), 1),
                      "lag_min_ms": round(lags[0], 1), "lag_max_ms": round(lags[-1], 1)})
    return Sample(extra=extra)


def cancel_leftovers() -> int:
    """Cancel bench runs an interrupted earlier invocation left running (they would hold workers)."""
    leftovers = list(Run.objects.filter(workflow__slug__startswith="bench-", status__in=["pending", "running"])
                     .values_list("pk", flat=True))
    for run_id in leftovers:
        run_cancel(run_id=run_id, actor="bench")
    return len(leftovers)


def vacuum(*, analyze_only: bool = False) -> None:
    """VACUUM (ANALYZE) Weft's tables before measuring, as pgbench does: every invocation starts from the same
    kind of table, whatever earlier runs (or a server with autovacuum off) left behind."""
    with connection.cursor() as cur:
        for table in VACUUMED_TABLES:
            cur.execute(f"{'ANALYZE' if analyze_only else 'VACUUM (ANALYZE)'} {table}")  # noqa: S608 (names)


def settle(*, analyze: bool, timeout: float = 30.0) -> None:
    """Wait until the broker holds no message, so a sample does not also pay for deliveries an earlier one
    left (the `start` workload's cancelled run leaves 50, which the workers drop one by one); then, with
    ``analyze``, ANALYZE, as autovacuum does while tables grow, so the workers' cached plans fit the tables'
    size. An ANALYZE makes every worker plan its prepared statements again (1-1.5 ms for each of the claim
    and chain statements), which autovacuum does once per tenth of a table changed, not once per run: a
    workload's first sample pays for it, the others run on the plans it left."""
    from django_q.models import OrmQ

    deadline = time.monotonic() + timeout
    while OrmQ.objects.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    if analyze:
        vacuum(analyze_only=True)


def prune(runs: int = 20_000) -> Sample:
    """Seed ``runs`` finished runs of about ten steps (``bench seed``'s), 400 days old, and prune them: runs deleted
    per second. Then seed as many again and run ``chain`` alone and while a prune deletes them: the ratio of the
    two per-step times."""
    from datetime import timedelta

    from engine.services.retention import prune as prune_runs

    old = timedelta(days=399)
    seed = partial(history_seed, runs=runs, wide_runs=0, oldest=timedelta(days=401), newest=timedelta(days=400))
    seed()
    t0 = time.monotonic()
    deleted = prune_runs(older_than=old)
    took = time.monotonic() - t0
    seed()
    alone = chain().per_step_ms
    pruning = threading.Thread(target=lambda: (prune_runs(older_than=old), connection.close()))
    pruning.start()
    while_pruning = chain().per_step_ms
    pruning.join()
    return Sample(extra={"runs_deleted_per_s": round(deleted.runs / took, 1), "deleted": deleted.runs,
                         "steps_deleted_per_s": round(deleted.steps / took, 1),
                         "chain_ms_alone": round(alone, 3), "chain_ms_pruning": round(while_pruning, 3),
                         "chain_ratio_pruning": round(while_pruning / alone, 2)})


def warm(durabilities: list[str]) -> None:
    """A short chain of each durability: the workers' imports, connections and graph caches."""
    for durability in durabilities:
        token = _DURABILITY.set(durability)
        try:
            chain(5)
        finally:
            _DURABILITY.reset(token)


GROWN_STEPS = 3000


def grow(steps: int = GROWN_STEPS) -> int:
    """Before measuring, grow Weft's tables to ``steps`` steps if they hold fewer (``many`` runs, unmeasured), then
    ANALYZE and replan (a few more runs). PostgreSQL plans a statement for the table sizes of its last ANALYZE
    and keeps the plan: the foreign-key checks every insert makes (each backend plans them once) and the workers'
    prepared statements. Planned on a new database's empty tables, they scan whole tables instead of reading an
    index, and cost more with every row a sample adds: `many`'s first samples on a new database took 1.5-1.7 ms
    of PostgreSQL CPU a step against 0.7 on the same tables planned at 3,000 steps. A database in use is past
    this: autovacuum ANALYZEs its tables as they grow. Returns the steps added."""
    added = 0
    while StepRun.objects.all()[:steps].count() < steps:
        added += many().steps
    if added:
        vacuum(analyze_only=True)
        many(runs=4)
    return added


def run_workload(name: str, *, analyze: bool = True, durability: str = "strict",
                 workers_pid: int | None = None) -> Sample:
    """One sample of workload ``name`` with workflows of that ``durability``; ``analyze``: ANALYZE Weft's tables
    first (see ``settle``). A workload that runs a known number of steps also gets their cost per step
    (benchcost.py), its workers' CPU from the process tree under ``workers_pid``."""
    token = _DURABILITY.set(durability)
    try:
        return _run_workload(name, analyze=analyze, workers_pid=workers_pid)
    finally:
        _DURABILITY.reset(token)


def _run_workload(name: str, *, analyze: bool, workers_pid: int | None) -> Sample:
    if name == "floor":
        ms = floor_ms()
        return Sample(per_step_ms=ms, steps_per_s=1000 / ms)
    settle(analyze=analyze)
    workloads = {"start": start, "chain": chain, "fanout": fanout, "many": many, "map": map_items,
                 "limited": limited, "isolation": isolation, "recovery": recovery, "idle": idle,
                 "schedules": schedules, "prune": prune}
    before = cost_read(workers_pid=workers_pid)
    sample = workloads[name]()
    if not sample.steps:
        return sample
    return replace(sample, **cost_per_step(before, cost_read(workers_pid=workers_pid), steps=sample.steps))
