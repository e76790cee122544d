"""Liveness of a running attempt: its lease, extended by the process's heartbeat thread, and its deadline.

A beat also notices that the attempt's run was cancelled or that its lease was lost (recovery counted the
attempt lost); the node sees either at its next journal call.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
import time

from django.conf import settings
from django.db import DatabaseError, connection

from engine import statements
from engine.core.dbretry import prepared_cursor
from engine.exceptions import StepTimeout
from engine.states import RunStatus, StepStatus

log = logging.getLogger(__name__)

SQL = statements.load(__file__, "sql/liveness.sql")


class Liveness:
    """Extends the lease every lease/3 seconds and notices cancellation or a lost lease.

    The beats come from one heartbeat thread per process (``_Heartbeats``), so a step that takes
    a millisecond costs no thread of its own.
    """

    def __init__(self, step_id: int, attempt: int, *, held: list[tuple[int, int]] = ()):
        self.step_id, self.attempt = step_id, attempt
        self.held = list(held)
        self.lease_s = settings.WEFT_LEASE_S
        self.lost = False
        self.cancelled = False
        self.next_beat = 0.0

    def start(self) -> None:
        self.next_beat = time.monotonic() + self.lease_s / 3
        _Heartbeats.get().add(self)

    def beat(self) -> None:
        try:
            with prepared_cursor() as cur:
                statements.execute(cur, SQL["heartbeat"], {"lease": self.lease_s, "step": self.step_id,
                                                            "attempt": self.attempt, "running": StepStatus.RUNNING})
                row = cur.fetchone()
                if self.held:  # the leases of a batch's claimed steps that have not started yet (engine.worker.loop)
                    statements.execute(cur, SQL["held_heartbeat"], {
                        "lease": self.lease_s, "ids": [h[0] for h in self.held], "running": StepStatus.RUNNING,
                        "attempts": [h[1] for h in self.held]})
        except DatabaseError as exc:
            log.warning("heartbeat for step %s failed, will retry: %s", self.step_id,
                        str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__)
            connection.close()
            return
        if row is None:
            self.lost = True
        elif row[0] == RunStatus.CANCELLED:
            self.cancelled = True

    def stop(self) -> None:
        _Heartbeats.get().discard(self)


class _Heartbeats(threading.Thread):
    """The process's heartbeat thread: beats for every running Liveness when its next beat is due."""

    _instance: _Heartbeats | None = None
    _instance_lock = threading.Lock()

    def __init__(self):
        super().__init__(name="weft-heartbeat", daemon=True)
        self.pid = os.getpid()
        self.live: set[Liveness] = set()
        self.lock = threading.Lock()
        self.wake = threading.Event()
        # When the thread next wakes by itself (time.monotonic()); it recomputes this, under the lock, from every
        # Liveness then present before each wait, so one added later must wake it only if it is due sooner.
        self.wake_at = float("inf")

    @classmethod
    def get(cls) -> _Heartbeats:
        with cls._instance_lock:
            if cls._instance is None or cls._instance.pid != os.getpid() or not cls._instance.is_alive():
                cls._instance = cls()  # first use, or a forked child (threads do not survive fork)
                cls._instance.start()
            return cls._instance

    def add(self, liveness: Liveness) -> None:
        with self.lock:
            self.live.add(liveness)
            due_sooner = liveness.next_beat < self.wake_at
        if due_sooner:  # else the thread wakes in time by itself: a chain of short steps costs it no wake-up
            self.wake.set()

    def discard(self, liveness: Liveness) -> None:
        with self.lock:
            self.live.discard(liveness)

    def run(self) -> None:
        try:
            while True:
                self.wake.clear()  # before the snapshot: a Liveness added after it wakes the wait below
                with self.lock:
                    live = list(self.live)
                now = time.monotonic()
                for liveness in live:
                    if liveness.next_beat <= now:
                        liveness.next_beat = now + liveness.lease_s / 3
                        with self.lock:
                            still = liveness in self.live
                        if still:
                            try:
                                liveness.beat()
                            except Exception:  # one bad beat must not stop the beats of every step here
                                log.warning("heartbeat for step %s failed", liveness.step_id, exc_info=True)
                                connection.close()
                with self.lock:
                    self.wake_at = min((lv.next_beat for lv in self.live), default=now + 60)
                self.wake.wait(max(self.wake_at - time.monotonic(), 0.01))
        finally:
            connection.close()


@contextlib.contextmanager
def deadline(seconds: float | None):
    """Raise StepTimeout in the main thread after ``seconds``, restoring django-q2's own alarm afterwards."""
    if not seconds or threading.current_thread() is not threading.main_thread():
        yield
        return
    previous_handler = signal.getsignal(signal.SIGALRM)
    previous_remaining = signal.getitimer(signal.ITIMER_REAL)[0]
    started = time.monotonic()

    def on_alarm(signum, frame):
        raise StepTimeout(f"step exceeded its timeout of {seconds:g} s")

    signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous_handler)
        if previous_remaining:
            left = previous_remaining - (time.monotonic() - started)
            signal.setitimer(signal.ITIMER_REAL, max(left, 0.01))
