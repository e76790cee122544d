"""Backup and restore: a pg_dump taken while runs are moving, restored into a fresh database, and Weft started
on it (the procedure of docs/operations.md, "Backup and restore").

Every run finishes on the restored database, and nothing that had finished when the dump was taken runs
again: the effects of steps go to a loopback server that counts the requests of each idempotency key.
"""

from __future__ import annotations

import subprocess
import time
from collections import Counter
from pathlib import Path

import pytest

from engine.core.journal import idempotency_key
from tests.chaos.test_postgres_restart import PrivatePostgres
from tests.conftest import chain, node
from tests.support.effects import EffectServer
from tests.support.private_site import PrivateSite, SiteWorkers

pytestmark = [pytest.mark.workers, pytest.mark.chaos]

RUNS, STEPS = 6, 12  # every other step an effect, the others a short sleep: the runs take seconds
RETRY = {"max_attempts": 10, "backoff_s": 0.2, "backoff_factor": 1.5, "max_backoff_s": 2}


@pytest.fixture
def private_pg():
    pg = PrivatePostgres()
    yield pg
    pg.close()


def pg_tool(pg: PrivatePostgres, name: str) -> str:
    """A client program of the same PostgreSQL build as the server (pg_dump, pg_restore)."""
    return str(Path(pg.pg_ctl).parent / name)


def test_dump_taken_while_runs_move_restores_and_finishes_every_run_once(private_pg, tmp_path):
    site = PrivateSite(private_pg, "weft")
    site.install()
    dump = tmp_path / "weft.dump"
    with EffectServer() as server:
        site.workflow_import(chain("backup", STEPS, lambda i: (
            node(f"s{i}", "tests.http_effect", kwargs={"url": server.url}, retry=RETRY) if i % 2 else
            node(f"s{i}", "tests.sleep", kwargs={"seconds": 0.3}, retry=RETRY))), tmp_path)
        site.runs_start("backup", RUNS)
        workers = SiteWorkers(site).start()
        try:
            deadline = time.monotonic() + 60
            while site.query("SELECT count(*) FROM engine_steprun WHERE status = 'succeeded'")[0][0] < RUNS * 2:
                assert time.monotonic() < deadline, "runs did not make progress before the dump"
                time.sleep(0.1)
            started = time.monotonic()
            subprocess.run([pg_tool(private_pg, "pg_dump"), "--format=custom", "--file", str(dump),
                            "--dbname", site.url], check=True, capture_output=True, timeout=60)
            dump_s = time.monotonic() - started
        finally:
            workers.stop()  # the old database is gone: nothing of it runs on
        before = Counter(server.deliveries)

        private_pg.server.psql("CREATE DATABASE weft_restored;")
        restored = PrivateSite(private_pg, "weft_restored")
        started = time.monotonic()
        subprocess.run([pg_tool(private_pg, "pg_restore"), "--exit-on-error", "--dbname", restored.url, str(dump)],
                       check=True, capture_output=True, timeout=60)
        restore_s = time.monotonic() - started
        at_dump = dict(restored.query("SELECT status, count(*) FROM engine_run GROUP BY status"))
        finished_at_dump = restored.query(
            "SELECT run_id, node_id, generation FROM engine_steprun WHERE status = 'succeeded'")
        attempts_at_dump = dict(restored.query(
            "SELECT a.step_id, count(*) FROM engine_attempt a JOIN engine_steprun s ON s.id = a.step_id "
            "WHERE s.status = 'succeeded' GROUP BY a.step_id"))
        assert at_dump.get("running", 0) > 0, f"the dump was taken after the runs had finished: {at_dump}"

        restored.manage("migrate", "-v0")  # nothing to apply: the dump holds the schema and its migrations
        workers = SiteWorkers(restored).start()
        started = time.monotonic()
        try:
            counts = restored.runs_wait(total=RUNS, timeout=90)
        finally:
            workers.stop()
        finish_s = time.monotonic() - started
    after = server.deliveries - before
    attempts_at_end = dict(restored.query(
        "SELECT step_id, count(*) FROM engine_attempt WHERE step_id = ANY(%s) GROUP BY step_id",
        list(attempts_at_dump)))
    finished_keys = {idempotency_key(run_id=run_id, node_id=node_id, generation=generation, key="call-0")
                     for run_id, node_id, generation in finished_at_dump}
    effect_keys = finished_keys & set(server.deliveries)
    lost = restored.query("SELECT count(*) FROM engine_attempt WHERE outcome = 'lost'")[0][0]
    print(f"\nbackup/restore: pg_dump {dump_s:.2f} s ({dump.stat().st_size} bytes) with {at_dump} runs; "
          f"pg_restore {restore_s:.2f} s; every run finished {finish_s:.1f} s after the workers started on the "
          f"restore; {len(effect_keys)} effects finished at the dump, {lost} attempts lost and retried; "
          f"{sum(after.values())} effect requests after the restore, {sum(after[k] for k in effect_keys)} of them "
          "for effects finished at the dump")
    assert counts == {"succeeded": RUNS}
    assert effect_keys, "no effect had finished when the dump was taken"
    assert {k: after[k] for k in effect_keys if after[k]} == {}, "effects finished at the dump ran again"
    assert attempts_at_end == attempts_at_dump, "steps finished at the dump were attempted again"
    assert len(server.applied) == RUNS * STEPS // 2  # every effect applied, once (the server deduplicates by key)
    assert server.missing_key == 0
