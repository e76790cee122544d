"""Shared fixtures: workflow builders, an in-process drain of the broker, and real worker processes."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from django.conf import settings

import tests.tasks  # noqa: F401  (registers the test task functions in this process too)

REPO = Path(__file__).resolve().parent.parent
TEST_QUEUES = {
    "default": {"workers": 2, "timeout": 600, "poll": 0.05},
    "fast": {"workers": 2, "timeout": 120, "poll": 0.05},
    "slow": {"workers": 1, "timeout": 600, "poll": 0.05},
}


def pytest_addoption(parser):
    parser.addoption("--soak", action="store_true", default=False,
                     help="also run the long soak tests (marked soak): minutes to tens of minutes each")


def pytest_collection_modifyitems(config, items):
    for item in items:
        if uses_a_transactional_database(item):
            item.add_marker(pytest.mark.slow)  # each one ends by emptying every table: about a second apiece
    if config.getoption("--soak"):
        return
    skip = pytest.mark.skip(reason="soak test: run with --soak")
    for item in items:
        if "soak" in item.keywords:
            item.add_marker(skip)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    """Captured output with a lone surrogate (tests/security/test_lone_surrogates.py logs some on purpose) is
    escaped in the report: pytest-xdist sends reports from its workers as UTF-8, and cannot send one."""
    report = yield
    report.sections = [(title, _utf8(text)) for title, text in report.sections]
    return report


def _utf8(text: str) -> str:
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def uses_a_transactional_database(item) -> bool:
    marker = item.get_closest_marker("django_db")
    if marker is not None and (marker.kwargs.get("transaction") or (marker.args and marker.args[0])):
        return True
    return bool({"transactional_db", "live_server"} & set(getattr(item, "fixturenames", ())))


def node(id, function="tests.noop", *, kwargs=None, **extra) -> dict:
    return {"id": id, "type": "python", "config": {"function": function, "kwargs": kwargs or {}}, **extra}


def definition(slug: str, nodes: list[dict], edges: list[tuple] | list[dict], **extra) -> dict:
    edge_dicts = [e if isinstance(e, dict) else {"source": e[0], "target": e[1]} for e in edges]
    return {"name": slug.replace("-", " ").title(), "slug": slug, "nodes": nodes, "edges": edge_dicts, **extra}


def chain(slug: str, n: int, make=lambda i: node(f"s{i}")) -> dict:
    nodes = [make(i) for i in range(1, n + 1)]
    return definition(slug, nodes, [(f"s{i}", f"s{i + 1}") for i in range(1, n)])


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker):
    """pytest-django's test database, with the trigger that refuses a status change engine/states.py does not
    allow. Worker processes use the same database, so they are checked too."""
    from django.db import connection

    from tests.support.transition_guard import transition_guard_install

    with django_db_blocker.unblock(), connection.cursor() as cursor:
        transition_guard_install(cursor=cursor)


FAST_PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _fast_password_hashing(request):
    """Users made in tests get MD5 password hashes: Django's PBKDF2 spends most of a second of CPU on each hash
    and each check, which was a tenth of the quick tier's time. Not in the browser tests: their users sign in
    to a daphne subprocess, which has the default hashers."""
    if request.node.get_closest_marker("e2e"):
        yield
        return
    from django.test.utils import override_settings

    with override_settings(PASSWORD_HASHERS=FAST_PASSWORD_HASHERS):  # its signal resets Django's hasher cache
        yield


def drain_queue(max_steps: int = 10_000, recover: bool = True) -> int:
    """Run queued steps in this process with the real executor, until nothing is left to do."""
    from django_q.models import OrmQ
    from django_q.signing import SignedPackage

    from engine.worker.executor import execute_step
    from engine.worker.recovery import recover_once

    done = 0
    while done < max_steps:
        row = OrmQ.objects.order_by("id").first()
        if row is None:
            if recover and recover_once():
                continue
            return done
        OrmQ.objects.filter(pk=row.pk).delete()
        task = SignedPackage.loads(row.payload)
        execute_step(*task["args"])
        done += 1
    raise AssertionError(f"drain did not finish within {max_steps} steps")


def deliver_one(run) -> str:
    """Run the broker message of ``run``'s one queued step in this process, as a worker would; its outcome."""
    from django_q.models import OrmQ
    from django_q.signing import SignedPackage

    from engine.models import StepRun
    from engine.worker.executor import execute_step

    row = OrmQ.objects.get(pk=StepRun.objects.get(run=run, status="queued").broker_msg_id)
    return execute_step(*SignedPackage.loads(row.payload)["args"])


@pytest.fixture
def drain():
    """``drain()``: run queued steps in this process with the real executor, until nothing is left to do."""
    return drain_queue


def test_database_url() -> str:
    db = settings.DATABASES["default"]
    host = db.get("HOST") or "127.0.0.1"
    if host.startswith("/"):  # the embedded server: a unix socket directory
        return f"postgresql://{db['USER']}@/{db['NAME']}?host={host}"
    port = db.get("PORT") or 5432
    return f"postgresql://{db['USER']}@{host}:{port}/{db['NAME']}"


test_database_url.__test__ = False  # a helper: pytest would collect it where a test module imports it


class Workers:
    """``manage.py runworkers`` in a subprocess against the test database."""

    def __init__(self, env: dict):
        self.env = env
        self.proc: subprocess.Popen | None = None

    def start(self, queues: str | None = None, recovery: bool = True) -> Workers:
        args = [sys.executable, str(REPO / "manage.py"), "runworkers"]
        if queues:
            args += ["--queues", queues]
        if not recovery:
            args.append("--no-recovery")
        self.proc = subprocess.Popen(args, cwd=REPO, env=self.env, start_new_session=True)
        return self

    def worker_pids(self) -> list[int]:
        """Pids of django-q2 worker processes (the ones that run tasks)."""
        if self.proc is None:
            return []
        out = []
        for child in psutil.Process(self.proc.pid).children(recursive=True):
            try:
                if "Worker" in " ".join(child.cmdline()) or child.name().startswith("qcluster"):
                    out.append(child.pid)
            except psutil.NoSuchProcess:
                continue
        return out

    def all_pids(self) -> list[int]:
        if self.proc is None:
            return []
        try:
            return [self.proc.pid] + [c.pid for c in psutil.Process(self.proc.pid).children(recursive=True)]
        except psutil.NoSuchProcess:
            return []

    def kill_random(self, rng: random.Random) -> int | None:
        """SIGKILL one random process below the clusters' main processes (workers, sentinels, pushers)."""
        if self.proc is None:
            return None
        try:
            clusters = psutil.Process(self.proc.pid).children()
        except psutil.NoSuchProcess:
            return None
        victims = [c for cl in clusters for c in _safe_children(cl)]
        if not victims:
            return None
        victim = rng.choice(victims)
        try:
            victim.kill()
        except psutil.NoSuchProcess:
            return None
        return victim.pid

    def stop(self) -> None:
        """SIGTERM the supervisor (it stops its clusters), then SIGKILL anything left in its process group."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                pass
        self.kill_all()

    def kill_all(self) -> None:
        """SIGKILL every process of this host at once (runworkers runs in its own session)."""
        kill_session(self.proc)
        self.proc = None


def kill_session(proc: subprocess.Popen | None) -> None:
    """SIGKILL a process started with ``start_new_session=True`` and everything in its group, and reap it."""
    if proc is None:
        return
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()


def _safe_children(proc):
    try:
        return proc.children(recursive=True)
    except psutil.NoSuchProcess:
        return []


@pytest.fixture
def worker_env(transactional_db) -> dict:
    return dict(
        os.environ,
        DATABASE_URL=test_database_url(),
        WEFT_TASK_MODULES="tests.tasks",
        WEFT_QUEUES=json.dumps(TEST_QUEUES),
        WEFT_LEASE_S="3",
        WEFT_RECOVERY_INTERVAL_S="0.3",
        WEFT_CONN_MAX_AGE="600",
        PYTHONPATH=str(REPO),
    )


@pytest.fixture
def workers(worker_env):
    w = Workers(worker_env)
    yield w
    w.stop()


def wait_for(predicate, *, timeout: float, interval: float = 0.1, message: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {message}")


def finished(run_id):
    """A predicate for wait_for: the run, once it is succeeded, failed or cancelled."""

    def check():
        from engine.models import Run
        from engine.states import RUN_TERMINAL

        run = Run.objects.get(pk=run_id)
        return run if run.status in RUN_TERMINAL else None

    return check
