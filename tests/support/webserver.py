"""A real daphne process serving config.asgi on a fixed loopback port, that can be killed and started again
on the same port (twisted listens with SO_REUSEADDR)."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import psutil

from tests.conftest import REPO, kill_session


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class WebServer:
    def __init__(self, env: dict, log_path: Path, port: int | None = None):
        self.env = env
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        self.proc: subprocess.Popen | None = None
        self.starts = 0

    def start(self, timeout: float = 60) -> WebServer:
        assert self.proc is None, "already running"
        log = open(self.log_path, "a")  # noqa: SIM115 (the child keeps it; closed right after the fork)
        log.write(f"--- start {self.starts + 1}\n")
        log.flush()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(self.port), "config.asgi:application"],
            cwd=REPO, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        log.close()
        self.starts += 1
        deadline = time.monotonic() + timeout
        while True:
            try:
                with urllib.request.urlopen(self.url + "/healthz", timeout=2) as r:
                    if r.status == 200:
                        return self
            except OSError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.kill()
                raise AssertionError("daphne did not start: " + self.log_path.read_text()[-3000:])
            time.sleep(0.1)

    def kill(self) -> None:
        """SIGKILL the server and anything it started: every open socket drops at once."""
        kill_session(self.proc)
        self.proc = None

    def stop(self) -> None:
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
        assert self.proc is not None
        return psutil.Process(self.proc.pid).memory_info().rss
