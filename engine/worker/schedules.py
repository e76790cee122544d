"""The schedule loop: every ``runworkers`` process runs one, with no leader. Each pass asks one cheap
statement how long until something is due (``schedules_next_due`` in sql/schedules.sql), sleeps until then
(at most WEFT_SCHEDULE_POLL_S) and fires what is due; which process fires a time is decided by the
ScheduleFire row's unique constraint (engine/services/schedule_fires.py)."""

from __future__ import annotations

import logging
import threading

from django.conf import settings
from django.db import DatabaseError, connection

from engine import statements
from engine.services.schedule_fires import ACTIVE, schedules_fire_once

log = logging.getLogger(__name__)

SQL = statements.load(__file__, "sql/schedules.sql")
RETRY_S = 0.05  # when something was due but another process had it
BUFFERED_POLL_S = 0.1  # while a buffered fire waits for its schedule's run to finish


def seconds_until_due() -> float | None:
    """Seconds until a schedule is due or a buffered fire can start (<= 0: now; at most BUFFERED_POLL_S while a
    buffered fire waits); None: nothing is scheduled."""
    with connection.cursor() as cur:
        statements.execute(cur, SQL["schedules_next_due"], {"active": list(ACTIVE)})
        value, buffered = cur.fetchone()
    value = None if value is None else float(value)
    if buffered:
        value = BUFFERED_POLL_S if value is None else min(value, BUFFERED_POLL_S)
    return value


class ScheduleLoop(threading.Thread):
    def __init__(self):
        super().__init__(name="weft-schedules", daemon=True)
        self.stopping = threading.Event()

    def run(self) -> None:
        poll = settings.WEFT_SCHEDULE_POLL_S
        failing = 0
        try:
            while not self.stopping.is_set():
                try:
                    wait = seconds_until_due()
                    if wait is not None and wait <= 0:
                        wait = 0 if schedules_fire_once() else RETRY_S
                    if failing:
                        log.warning("schedules: database reachable again after %d failed pass(es)", failing)
                        failing = 0
                except DatabaseError as exc:
                    if not failing:
                        log.warning("schedule pass failed, retrying every %.1f s: %s", poll,
                                    (str(exc).strip().splitlines() or [type(exc).__name__])[0])
                    failing += 1
                    connection.close()
                    wait = poll
                if wait is None or wait > 0:
                    self.stopping.wait(poll if wait is None else min(wait, poll))
        finally:
            connection.close()

    def stop(self) -> None:
        self.stopping.set()
