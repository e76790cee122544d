"""``manage.py up``: prepare the database, start the web server and the workers, stop them all on Ctrl-C.

Children run in their own process groups, so a terminal's Ctrl-C reaches only this
process; it then sends SIGTERM to each child's main process (never to a process
group: that can hang django-q2's sentinel), waits, and SIGKILLs what remains.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import psutil
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command, get_commands
from django.core.management.base import BaseCommand
from django.db import connections

ADMIN = "admin"
STOP_GRACE_S = 15
READY_TIMEOUT_S = 60


class Command(BaseCommand):
    help = "Migrate, ensure the admin user, then run the web server (daphne) and the workers until Ctrl-C."

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1", help="address daphne binds (default 127.0.0.1)")
        parser.add_argument("--port", type=int, default=8000, help="HTTP port (default 8000)")
        parser.add_argument("--no-workers", action="store_true", help="run the web server only, no queue workers")

    def handle(self, *args, host, port, no_workers, **options):
        sys.exit(up(self.stdout, host=host, port=port, workers=not no_workers))


def up(out, *, host: str, port: int, workers: bool) -> int:
    """Prepare, run until SIGINT/SIGTERM (exit status 0) or until a child dies (exit status 1)."""
    prepare(out)
    observability_prepare()
    connections.close_all()  # hold no idle database connection while supervising
    return Supervisor(out).run(host=host, port=port, workers=workers)


def prepare(out) -> None:
    """Migrate, collect static files, make sure ``admin`` exists, load the demos when that command exists."""
    call_command("migrate", interactive=False, verbosity=0)
    call_command("collectstatic", interactive=False, verbosity=0)
    ensure_admin(out)
    if "load_demos" in get_commands():
        call_command("load_demos")


def observability_prepare() -> None:
    """Children log in the format resolved here, and write their metrics to one directory for /metrics."""
    from engine.observability.metrics import multiprocess_prepare

    os.environ.setdefault("WEFT_LOG_FORMAT", settings.WEFT_LOG_FORMAT)
    multiprocess_prepare(settings.WEFT_METRICS_DIR)


def ensure_admin(out) -> None:
    """Create the ``admin`` superuser if missing; WEFT_ADMIN_PASSWORD, when set, is always its password."""
    users = get_user_model()
    password = os.environ.get("WEFT_ADMIN_PASSWORD") or None
    user = users.objects.filter(username=ADMIN).first()
    if user is None:
        chosen = password or secrets.token_urlsafe(12)
        users.objects.create_superuser(ADMIN, email="", password=chosen)
        if password:
            out.write(f"Created user '{ADMIN}' with the password in WEFT_ADMIN_PASSWORD.")
        else:
            out.write(f"Created user '{ADMIN}' with password: {chosen}")
            out.write("  (shown only this once; set WEFT_ADMIN_PASSWORD and run `up` again to change it)")
    elif password:
        user.set_password(password)
        user.save(update_fields=["password"])
        out.write(f"Set the password of '{ADMIN}' from WEFT_ADMIN_PASSWORD.")
    out.flush()


class Supervisor:
    """Runs daphne and ``runworkers`` as children and stops every one of them before returning."""

    def __init__(self, out):
        self.out = out
        self.children: dict[str, subprocess.Popen] = {}
        self.stop_requested = False

    def run(self, *, host: str, port: int, workers: bool) -> int:
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, self._request_stop)
        try:
            return self._run(host, port, workers)
        finally:
            self.stop_all()

    def _run(self, host: str, port: int, workers: bool) -> int:
        if port_answers(host, port):
            self.err(f"port {port} on {host} is already in use; choose another with --port")
            return 1
        daphne = Path(sys.executable).with_name("daphne")
        daphne_argv = [str(daphne)] if daphne.exists() else [sys.executable, "-m", "daphne"]
        self.start("daphne", [*daphne_argv, "-b", host, "-p", str(port), "config.asgi:application"])
        if workers:
            self.start("runworkers", [sys.executable, str(settings.BASE_DIR / "manage.py"), "runworkers"])
        deadline = time.monotonic() + READY_TIMEOUT_S
        while not self.stop_requested and not port_answers(host, port):
            if dead := self.dead_child():
                return self.report_death(dead)
            if time.monotonic() > deadline:
                self.err(f"daphne did not answer on port {port} within {READY_TIMEOUT_S} s; stopping")
                return 1
            time.sleep(0.1)
        if self.stop_requested:
            return 0
        self.out.write(f"Weft is running at http://{host}:{port}/  (log in as {ADMIN})")
        self.out.flush()
        while not self.stop_requested:
            if dead := self.dead_child():
                return self.report_death(dead)
            time.sleep(0.2)
        return 0

    def start(self, name: str, argv: list[str]) -> None:
        if not self.stop_requested:
            self.children[name] = subprocess.Popen(
                argv,
                cwd=settings.BASE_DIR,
                stdin=subprocess.DEVNULL,
                process_group=0,
                preexec_fn=_terminate_with_parent,
            )

    def dead_child(self) -> str | None:
        return next((name for name, proc in self.children.items() if proc.poll() is not None), None)

    def report_death(self, name: str) -> int:
        self.err(f"{name} exited unexpectedly (status {self.children[name].returncode}); stopping the others")
        return 1

    def stop_all(self) -> None:
        """SIGTERM each child's main process, wait up to STOP_GRACE_S, then SIGKILL what remains."""
        for proc in self.children.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE_S
        for name, proc in self.children.items():
            try:
                proc.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                self.err(f"{name} did not stop within {STOP_GRACE_S} s; killing it and its processes")
                kill_tree(proc)

    def err(self, line: str) -> None:
        print(f"weft up: {line}", file=sys.stderr, flush=True)

    def _request_stop(self, signum, frame) -> None:
        self.stop_requested = True


def port_answers(host: str, port: int) -> bool:
    target = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(host, host)
    try:
        with socket.create_connection((target, port), timeout=0.5):
            return True
    except OSError:
        return False


def kill_tree(proc: subprocess.Popen) -> None:
    """SIGKILL a child and every process under it (a half-stopped runworkers may still have clusters)."""
    with contextlib.suppress(psutil.NoSuchProcess):
        for descendant in psutil.Process(proc.pid).children(recursive=True):
            with contextlib.suppress(psutil.NoSuchProcess):
                descendant.kill()
    proc.kill()
    proc.wait()


def _terminate_with_parent() -> None:
    """In the child, before exec: on Linux, get SIGTERM if ``up`` itself dies (even by SIGKILL)."""
    if sys.platform.startswith("linux"):
        pr_set_pdeathsig = 1
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)
