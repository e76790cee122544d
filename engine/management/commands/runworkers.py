"""Start and supervise one django-q2 cluster per queue, plus Weft's recovery loop and schedule loop.

This process is the child subreaper of its clusters (Linux): when a cluster's main process dies, its
sentinel and workers become children of this process instead of init, and are stopped here before
the cluster is started again, so a dead cluster leaves nothing running behind it.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import sys
import time

from django import db
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError

from engine.core.queues import workers_forget, workers_heartbeat
from engine.observability.metrics import multiprocess_prepare
from engine.worker.admission import AdmissionLoop
from engine.worker.recovery import RecoveryLoop
from engine.worker.schedules import ScheduleLoop

STOP_TIMEOUT_S = 10
RESTART_BACKOFF_S = 2
HEARTBEAT_S = 5


class Command(BaseCommand):
    help = "Run one django-q2 cluster per Weft queue (or the ones named), the recovery loop and the schedule loop."

    def add_arguments(self, parser):
        parser.add_argument("--queues", help="comma-separated queue names (default: every configured queue)")
        parser.add_argument("--no-recovery", action="store_true", help="do not run the recovery loop here")
        parser.add_argument("--no-schedules", action="store_true", help="do not fire schedules here")

    def handle(self, *args, queues=None, no_recovery=False, no_schedules=False, **options):
        names = _chosen_queues(queues)
        stopping = False

        def on_signal(signum, frame):
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
        _become_subreaper()
        # Metrics of this process and of every cluster's workers go to files that /metrics merges.
        multiprocess_prepare(settings.WEFT_METRICS_DIR)
        clusters = {name: _start_cluster(name) for name in names}
        self.stdout.write(f"weft workers: queues {', '.join(names)} (pids "
                          f"{', '.join(str(p.pid) for p in clusters.values())})")
        self.stdout.flush()
        _warn_about_vacuum(self.stderr)
        recovery = None
        if not no_recovery:
            recovery = RecoveryLoop()
            recovery.start()
        schedules = None
        if not no_schedules:
            schedules = ScheduleLoop()
            schedules.start()
        admission = AdmissionLoop()
        admission.start()
        host = socket.gethostname()
        last_beat = 0.0
        try:
            while not stopping:
                if time.monotonic() - last_beat >= HEARTBEAT_S:
                    last_beat = time.monotonic()
                    _beat(host, clusters)
                time.sleep(0.5)
                for name, proc in list(clusters.items()):
                    if proc.poll() is not None and not stopping:
                        self.stderr.write(f"weft workers: cluster {name!r} exited with {proc.returncode}; restarting")
                        _stop_strays(clusters.values())
                        time.sleep(RESTART_BACKOFF_S)
                        clusters[name] = _start_cluster(name)
        finally:
            admission.stop()
            if recovery:
                recovery.stop()
            if schedules:
                schedules.stop()
            _stop_all(clusters.values())
            _stop_strays(clusters.values())
            _forget(host, clusters)
            if recovery:
                recovery.join(timeout=5)
            if schedules:
                schedules.join(timeout=5)
            admission.join(timeout=5)


def _beat(host: str, clusters: dict) -> None:
    try:
        workers_heartbeat(host=host, clusters={q: p.pid for q, p in clusters.items() if p.poll() is None})
    except DatabaseError:
        db.close_old_connections()  # the database is away; the clusters reconnect on their own


def _forget(host: str, clusters: dict) -> None:
    try:
        workers_forget(host=host, pids=[p.pid for p in clusters.values()])
    except DatabaseError:
        pass


def _warn_about_vacuum(out) -> None:
    from engine.operations.health import vacuum_problems

    try:
        problems = vacuum_problems()
    except DatabaseError:
        return  # the database is away; the clusters wait for it and say so
    finally:
        db.connections.close_all()  # not kept open across the clusters' lifetime here
    for problem in problems:
        out.write(f"weft workers: warning: {problem}")


def _chosen_queues(raw: str | None) -> list[str]:
    configured = list(settings.WEFT_QUEUES)
    if not raw:
        return configured
    names = [n.strip() for n in raw.split(",") if n.strip()]
    unknown = [n for n in names if n not in settings.WEFT_QUEUES]
    if unknown or not names:
        raise CommandError(
            f"--queues: unknown queue(s) {', '.join(unknown) or '(none given)'}; configured: {', '.join(configured)}",
            returncode=2,
        )
    return names


def _start_cluster(name: str) -> subprocess.Popen:
    env = dict(os.environ, Q_CLUSTER_NAME=name)
    manage = os.path.join(settings.BASE_DIR, "manage.py")
    return subprocess.Popen([sys.executable, manage, "qcluster"], env=env)


def _stop_all(procs) -> None:
    """SIGTERM to each cluster's main process only (a signal to the whole group can hang the sentinel)."""
    procs = [p for p in procs if p.poll() is None]
    for p in procs:
        p.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT_S
    for p in procs:
        try:
            p.wait(timeout=max(deadline - time.monotonic(), 0.1))
        except subprocess.TimeoutExpired:
            _kill_tree(p.pid)
            p.wait()


def _become_subreaper() -> None:
    """On Linux, adopt the processes a dying cluster leaves behind (see the module docstring)."""
    if sys.platform.startswith("linux"):
        pr_set_child_subreaper = 36
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_child_subreaper, 1, 0, 0, 0)


def _stop_strays(clusters) -> None:
    """SIGKILL and reap every child of this process that is not a live cluster's main process: what a
    cluster left behind when its main process (or its sentinel) died."""
    import psutil

    mains = {p.pid for p in clusters if p.poll() is None}
    strays = []
    for child in psutil.Process().children():
        if child.pid in mains:
            continue
        with contextlib.suppress(psutil.NoSuchProcess):
            strays += child.children(recursive=True)
        strays.append(child)
    for proc in strays:
        with contextlib.suppress(psutil.NoSuchProcess):
            proc.kill()
    psutil.wait_procs(strays, timeout=5)
    for child in psutil.Process().children():  # the strays' own children, adopted as they died
        if child.pid not in mains:
            with contextlib.suppress(psutil.Error):
                child.kill()
                child.wait(timeout=5)


def _kill_tree(pid: int) -> None:
    import psutil

    try:
        parent = psutil.Process(pid)
        for child in parent.children(recursive=True):
            child.kill()
        parent.kill()
    except psutil.NoSuchProcess:
        pass
