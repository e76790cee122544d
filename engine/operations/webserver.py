"""A daphne process serving config.asgi on a loopback port, as ``manage.py up`` serves it: started, waited for
until ``/healthz`` answers, stopped, or killed and started again on the same port (twisted listens with
SO_REUSEADDR). ``bench ui`` measures the run view through one; the browser and chaos tests drive Weft through one.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import psutil
from django.conf import settings


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class WebServer:
    """daphne in its own process group, with ``env`` (the current environment by default), logging to
    ``log_path`` (appended, a line marking each start)."""

    def __init__(self, env: dict | None, log_path: Path, port: int | None = None):
        self.env = env
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = Path(log_path)
        self.proc: subprocess.Popen | None = None
        self.starts = 0

    def start(self, timeout: float = 60) -> WebServer:
        """Start daphne and wait until it answers ``/healthz``; raises RuntimeError with its log's end if it
        exits or does not answer within ``timeout`` seconds."""
        if self.proc is not None:
            raise RuntimeError("the web server is already running")
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "a")  # noqa: SIM115 (the child keeps it; closed right after the fork)
        log.write(f"--- start {self.starts + 1}\n")
        log.flush()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(self.port), "config.asgi:application"],
            cwd=settings.BASE_DIR, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        log.close()
        self.starts += 1
        deadline = time.monotonic() + timeout
        while not _answers(self.url + "/healthz"):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.kill()
                raise RuntimeError(f"daphne did not start; the end of {self.log_path}:\n"
                                   + self.log_path.read_text()[-3000:])
            time.sleep(0.1)
        return self

    def kill(self) -> None:
        """SIGKILL the server and anything it started: every open socket drops at once."""
        if self.proc is None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait()
        self.proc = None

    def stop(self) -> None:
        """SIGTERM, up to 10 s to finish, then SIGKILL."""
        if self.proc is None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
        self.kill()

    def rss(self) -> int:
        """Resident memory of the server process, in bytes."""
        if self.proc is None:
            raise RuntimeError("the web server is not running")
        return psutil.Process(self.proc.pid).memory_info().rss


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as r:
            return r.status == 200
    except OSError:
        return False
