"""Chaos: relaxed durability against a PostgreSQL crash, on a private server (tests/chaos/test_postgres_restart.py).

A relaxed run's worker transactions commit with ``synchronous_commit = off``: the committing backend does not
wait for its WAL to reach the disk, the WAL writer writes it within three ``wal_writer_delay``s. The first test
shows that on the server's own counters (PostgreSQL 18's ``pg_stat_io``): a strict chain's workers flush the WAL
once per step, a relaxed chain's leave it to the WAL writer. The second stops PostgreSQL with ``pg_ctl stop -m
immediate`` (no checkpoint; WAL still in the server's buffers is never written, as in a crash of the server)
while relaxed runs execute: the last commits are lost, their steps run again, and their calls are made again
with the same idempotency keys, so the outside service applies each effect once.
"""

from __future__ import annotations

import time

import pytest

from tests.chaos.test_postgres_restart import private_pg, weft_on  # noqa: F401 (a fixture)
from tests.conftest import Workers, chain, node
from tests.support.effects import EffectServer

pytestmark = [pytest.mark.workers, pytest.mark.chaos]


def start_runs(manage, slug: str, n: int) -> None:
    manage("shell", "-c", "from engine.services.scheduler import run_start\n"
                          f"for i in range({n}): run_start(workflow={slug!r}, inputs={{'i': i}})")


def wal_flushes(pg) -> dict[str, int]:
    """WAL fsyncs since the last reset of pg_stat_io, by backend type (client backend, walwriter, ...)."""
    return dict(pg.query("SELECT backend_type, coalesce(sum(fsyncs), 0)::int FROM pg_stat_io "
                         "WHERE object = 'wal' GROUP BY backend_type"))


def test_relaxed_commits_leave_the_wal_flush_to_the_wal_writer(private_pg, tmp_path):  # noqa: F811
    steps = 200
    definitions = [{**chain(f"wal-{durability}", steps), "durability": durability}
                   for durability in ("strict", "relaxed")]
    env, manage = weft_on(private_pg, tmp_path, definitions)
    flushes = {}
    for durability in ("strict", "relaxed"):
        private_pg.query("SELECT pg_stat_reset_shared('io')")
        workers = Workers(env).start()
        try:
            manage("run", "start", f"wal-{durability}", "--wait", "--timeout", "120")
        finally:
            workers.stop()
        deadline = time.monotonic() + 30  # a backend adds its counters to pg_stat_io when its client has gone
        while private_pg.query("SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend' "
                               "AND pid <> pg_backend_pid()")[0][0]:
            assert time.monotonic() < deadline, "the workers' connections did not close"
            time.sleep(0.1)
        flushes[durability] = wal_flushes(private_pg)
    flushes = {durability: {who: n for who, n in by_type.items() if n} for durability, by_type in flushes.items()}
    print(f"\nWAL fsyncs for one run of {steps} steps, by backend type: {flushes}")
    assert flushes["strict"].get("client backend", 0) >= steps  # every step's commit waited for its own flush
    # relaxed: the run's start (strict) and the workers' own bookkeeping (three rows every 5 s: 4 fsyncs for workers
    # started, idle for 5 s and stopped); the steps' commits are flushed by the WAL writer
    assert flushes["relaxed"].get("client backend", 0) < steps / 5
    assert flushes["relaxed"].get("walwriter", 0) >= 1


RUNS, STEPS, CRASHES = 10, 30, 2


@pytest.mark.parametrize("durability", ["relaxed", "strict"])
def test_immediate_shutdown_during_runs_repeats_no_effect(private_pg, tmp_path, durability):  # noqa: F811
    """Relaxed: what the crash lost runs again, each effect applied once. Strict: the crash loses nothing that was
    committed."""
    with EffectServer(delay_s=0.01) as server:
        definition = {**chain("pg-crash", STEPS, lambda i: node(
            f"s{i}", "tests.http_effect", kwargs={"url": server.url},
            retry={"max_attempts": 20, "backoff_s": 0.5, "backoff_factor": 1.5, "max_backoff_s": 3})),
            "durability": durability}
        env, manage = weft_on(private_pg, tmp_path, [definition])
        workers = Workers(env).start()
        lost_events = lost_successes = 0
        try:
            start_runs(manage, "pg-crash", RUNS)
            isolated = private_pg.dir / "isolated"  # a socket directory the workers do not know
            isolated.mkdir()
            isolated.chmod(0o777)
            for crash in range(1, CRASHES + 1):
                private_pg.steps_succeeded_wait(crash * RUNS * STEPS // (CRASHES + 1), timeout=120)
                # what was committed, and visible, a moment before the crash
                seqs = dict(private_pg.query("SELECT id, last_seq FROM engine_run"))
                succeeded = {row[0] for row in private_pg.query(
                    "SELECT id FROM engine_steprun WHERE status = 'succeeded'")}
                private_pg.stop("immediate")
                private_pg.start(socket_dir=isolated)  # recovered from the WAL, out of the workers' reach
                kept_seqs = dict(private_pg.query("SELECT id, last_seq FROM engine_run", socket_dir=isolated))
                kept = {row[0] for row in private_pg.query(
                    "SELECT id FROM engine_steprun WHERE status = 'succeeded'", socket_dir=isolated)}
                private_pg.stop("fast")
                private_pg.start()
                lost_events += sum(max(0, seq - kept_seqs[run]) for run, seq in seqs.items())
                lost_successes += len(succeeded - kept)
            crashed = time.time()
            counts = private_pg.runs_settled_wait(timeout=120)
            finished_s = time.time() - crashed
        finally:
            workers.stop()
    stuck = private_pg.query("SELECT count(*) FROM engine_steprun WHERE status IN ('running', 'queued')")[0][0]
    lost_attempts = private_pg.query("SELECT count(*) FROM engine_attempt WHERE outcome = 'lost'")[0][0]
    repeated = sum(1 for n in server.deliveries.values() if n > 1)
    print(f"\npostgres crash ({durability}): {RUNS} runs x {STEPS} steps, {CRASHES} immediate shutdowns; committed "
          f"before a crash and lost: {lost_events} events, {lost_successes} step successes (those steps ran "
          f"again); {repeated} calls made again with their key ({sum(server.deliveries.values())} deliveries for "
          f"{len(server.deliveries)} keys); {lost_attempts} attempts lost and retried; finished {finished_s:.1f} s "
          "after the last crash")
    assert counts == {"succeeded": RUNS}
    assert stuck == 0
    assert len(server.deliveries) == RUNS * STEPS and server.missing_key == 0
    assert set(server.applied.values()) == {1}  # every effect applied once, whatever was lost
    if durability == "strict":  # what was committed was on disk
        assert (lost_events, lost_successes) == (0, 0)
