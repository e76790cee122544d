"""The admission timer: steps waiting for a limit start when a rate's next token or a pause's end comes.

A finished step's worker runs an admission pass itself (engine.worker.loop), so slots freed by steps are taken
at once; time-bound waits (rates, pauses after a 429) need a clock. Every ``runworkers`` process runs this
loop; passes are serialised in the database (engine.core.limits), so several hosts only share the work.
"""

from __future__ import annotations

import logging
import threading

from django.conf import settings
from django.db import DatabaseError, connection

from engine.core.limits import limits_tick

log = logging.getLogger(__name__)


class AdmissionLoop(threading.Thread):
    """Runs ``limits_tick`` when the next rate token or pause end is due, at least every
    WEFT_LIMITS_INTERVAL_S while steps wait."""

    def __init__(self):
        super().__init__(name="weft-admission", daemon=True)
        self.stopping = threading.Event()

    def run(self) -> None:
        interval = settings.WEFT_LIMITS_INTERVAL_S
        failing = False
        try:
            while not self.stopping.is_set():
                try:
                    due = limits_tick()
                    failing = False
                except DatabaseError as exc:
                    if not failing:
                        log.warning("admission pass failed, retrying: %s", str(exc).strip()[:200])
                    failing = True
                    connection.close()
                    due = None
                self.stopping.wait(interval if due is None else min(max(due, 0.005), interval))
        finally:
            connection.close()

    def stop(self) -> None:
        self.stopping.set()
