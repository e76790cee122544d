"""The test's side of tests/support/wsclient.py: starts the client process and sends it commands."""

from __future__ import annotations

import json
import subprocess
import sys

import psutil

from engine.states import RunStatus, StepStatus
from tests.conftest import REPO


class Browsers:
    """``n`` browsers' worth of websocket clients (one run-list socket each, plus one per watched run)."""

    def __init__(self, url: str, cookie: str, n: int, log_path):
        self.n = n
        self.log = open(log_path, "w")  # noqa: SIM115 (closed in close())
        self.proc = subprocess.Popen([sys.executable, "-m", "tests.support.wsclient"], cwd=REPO,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log, text=True)
        self.call("init", url=url, cookie=cookie, browsers=n, step_statuses=[s.value for s in StepStatus],
                  run_statuses=[s.value for s in RunStatus])

    def call(self, cmd: str, **args) -> dict:
        self.proc.stdin.write(json.dumps({"cmd": cmd, **args}) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise AssertionError(f"the websocket client process died: {open(self.log.name).read()[-3000:]}")
        answer = json.loads(line)
        assert answer["ok"], answer
        return answer

    def watch(self, runs_by_browser: dict[int, list[str]]) -> None:
        self.call("watch", runs=runs_by_browser)

    def unwatch(self, runs_by_browser: dict[int, list[str]]) -> None:
        self.call("unwatch", runs=runs_by_browser)

    def progress(self) -> dict:
        return self.call("progress")

    def state(self) -> list[dict]:
        return self.call("state")["browsers"]

    def rss(self) -> int:
        return psutil.Process(self.proc.pid).memory_info().rss

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                self.call("close")
                self.proc.wait(timeout=30)
            except Exception:  # a failed test still stops the clients
                self.proc.kill()
                self.proc.wait()
        self.log.close()
