"""What a bench sample costs per step: the bench database's commits and WAL bytes, and the CPU time of the workers,
PostgreSQL and the bench process itself (docs/benchmarks.md, "What a step costs").

``cost_read`` is taken before and after a sample; ``cost_per_step`` divides the difference by the sample's steps.

Commits and WAL bytes come from the WAL records written between the two readings (pg_walinspect), keeping this
database's, not from ``pg_stat_database.xact_commit`` and the difference of WAL positions:

- A backend adds its transaction counts to ``pg_stat_database`` at most once a second, and one that goes idle
  less than a second after its last report keeps them until its idle timer fires 10 s later
  (PGSTAT_MIN_INTERVAL and PGSTAT_IDLE_INTERVAL in PostgreSQL 15). The workers' backends go idle as a sample
  ends: most of a 30-step chain's commits reached ``xact_commit`` 10 s after it, not 1 s.
  ``pg_stat_clear_snapshot`` only drops the reader's cached copy, and ``pg_stat_force_next_flush`` only flushes
  the reader's own backend.
  Waiting 10 s lets the idle workers' polls (read-only transactions, about 20 a second) in: 200 commits in a
  window where a chain makes 30-40.
- The WAL position and the transaction id counter are the whole server's: on a server shared with other
  databases (this machine's, while other test suites ran) they counted 4-7 transactions and 19-30 KB a chain
  step, where this database's WAL records held 1.17 commits and 4-9 KB.

A commit here is a transaction that wrote (a COMMIT record; strict, a WAL flush); read-only transactions write
none and are not counted.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import psutil
from django.db import DatabaseError, connection

from engine import statements

SQL = statements.load(__file__, "sql/benchcost.sql")


@dataclass(frozen=True)
class CostReading:
    wal_lsn: str  # the WAL insert position
    workers_cpu_s: float | None  # the worker process tree, with the children it reaped
    postgres_cpu_s: dict[int, float] | None  # each server process of this database, and the shared ones
    bench_cpu_s: tuple[float, float]  # this process's as the reading began and as it ended


def cost_prepare() -> str | None:
    """Install pg_walinspect in the bench database if it is missing; why commits and WAL cannot be counted, if so."""
    try:
        with connection.cursor() as cur:
            statements.execute(cur, SQL["cost_inspect_wal"], {})
    except DatabaseError as exc:
        return f"pg_walinspect: {exc}".strip()
    return None


def cost_read(*, workers_pid: int | None) -> CostReading:
    """The counters a sample's cost is the difference of; ``workers_pid``: the root of the worker process tree."""
    began = time.process_time()
    with connection.cursor() as cur:
        statements.execute(cur, SQL["cost_position"], {})
        wal_lsn, backend_pid = cur.fetchone()
        statements.execute(cur, SQL["cost_server_processes"], {})
        server_pids = [pid for (pid,) in cur.fetchall()]
    workers_cpu_s, postgres_cpu_s = _tree_cpu_s(workers_pid), _server_cpu_s(backend_pid, server_pids)
    return CostReading(wal_lsn=wal_lsn, workers_cpu_s=workers_cpu_s, postgres_cpu_s=postgres_cpu_s,
                       bench_cpu_s=(began, time.process_time()))


def cost_per_step(before: CostReading, after: CostReading, *, steps: int) -> dict[str, float | None]:
    """Commits, WAL bytes and CPU milliseconds of each process kind per step between two readings."""
    postgres = None
    if before.postgres_cpu_s is not None and after.postgres_cpu_s is not None:
        # A process that started in between counts from zero; one that ended in between loses its last interval.
        postgres = sum(s - before.postgres_cpu_s.get(pid, 0.0) for pid, s in after.postgres_cpu_s.items())
    workers = None
    if before.workers_cpu_s is not None and after.workers_cpu_s is not None:
        workers = after.workers_cpu_s - before.workers_cpu_s
    commits, wal_bytes = _wal_of_database(before.wal_lsn, after.wal_lsn) or (None, None)
    cpu = {"workers": workers, "postgres": postgres, "bench": after.bench_cpu_s[0] - before.bench_cpu_s[1]}
    return {"commits_per_step": None if commits is None else commits / steps,
            "wal_bytes_per_step": None if wal_bytes is None else wal_bytes / steps,
            **{f"{kind}_cpu_ms_per_step": None if s is None else s * 1000 / steps for kind, s in cpu.items()}}


def _wal_of_database(start: str, end: str, *, timeout: float = 5.0) -> tuple[int, int] | None:
    """This database's commits and WAL bytes from ``start`` to ``end``, once the WAL is flushed that far (relaxed
    commits leave it to the WAL writer); None without pg_walinspect (``cost_prepare``)."""
    deadline = time.monotonic() + timeout
    try:
        with connection.cursor() as cur:
            while True:
                statements.execute(cur, SQL["cost_wal_flushed"], {"lsn": end})
                if cur.fetchone()[0] or time.monotonic() > deadline:
                    break
                time.sleep(0.05)
            statements.execute(cur, SQL["cost_wal_of_database"], {"start": start, "end": end})
            return cur.fetchone()
    except DatabaseError:
        return None


def _cpu_s(process: psutil.Process, *, reaped: bool) -> float:
    times = process.cpu_times()
    total = times.user + times.system
    return total + times.children_user + times.children_system if reaped else total


def _tree_cpu_s(pid: int | None) -> float | None:
    """CPU seconds of the process ``pid``, its descendants and every descendant they reaped. django-q2 replaces
    workers as it goes: one that ends is reaped by its cluster, whose reaped children's times then hold all of
    it, so the difference of two readings counts every process that ran in between, whole."""
    if pid is None:
        return None
    try:
        root = psutil.Process(pid)
        processes = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return None
    total = 0.0
    for process in processes:
        try:
            total += _cpu_s(process, reaped=True)
        except psutil.NoSuchProcess:  # ended since listed: its parent's reaped children's times hold it now or soon
            pass
    return total


def _server_cpu_s(backend_pid: int, pids: list[int]) -> dict[int, float] | None:
    """CPU seconds of each of ``pids`` (this database's backends and the server's shared processes) and of the
    postmaster (its own time: its reaped children are every database's ended backends). None when the server's
    processes are not this machine's or cannot be read (another user's, without privileges)."""
    try:
        backend = psutil.Process(backend_pid)
        postmaster = backend.parent()
        if backend.name() != "postgres" or postmaster is None or postmaster.name() != "postgres":
            return None
        times = {postmaster.pid: _cpu_s(postmaster, reaped=False)}
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return None
    for pid in pids:
        try:
            times[pid] = _cpu_s(psutil.Process(pid), reaped=False)
        except psutil.NoSuchProcess:
            pass
        except psutil.AccessDenied:
            return None
    return times
