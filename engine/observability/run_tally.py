"""The runs per status of the ``weft_runs`` gauge, without counting every run at each scrape.

The recovery loop's leader takes a tally every WEFT_RUN_TALLY_S (``PeriodicRunTally``): for each terminal
status, how many runs of that status finished before the tally's ``as_of`` (sql/run_tally.sql). A scrape
adds the runs the tally leaves out, those unfinished or finished since ``as_of``, which two partial indexes
find without reading the others (``runs_by_status``).

``as_of`` is the tally's own time, or when the oldest transaction then open in the database began if that is
earlier: a run's ``finished_at`` is the time of the statement that finished it, so a run finished by a
transaction still open when the tally is taken, which the tally cannot see, has a ``finished_at`` no earlier
than ``as_of`` and is counted by the scrapes instead. This holds for the transactions ``pg_stat_activity``
shows the tally's role (all of them when Weft's processes connect as one role).
"""

from __future__ import annotations

import time
from datetime import datetime

from django.conf import settings
from django.db import connection

from engine import statements
from engine.states import RUN_TERMINAL

SQL = statements.load(__file__, "sql/run_tally.sql")
TERMINAL = sorted(RUN_TERMINAL)
# A tally whose as_of is more than this many intervals old is not used: no recovery loop keeps it, or a
# transaction open that long holds as_of back (and the runs since it would be many).
FRESH_INTERVALS = 10


def run_tally_take() -> datetime:
    """Take the tally and return its ``as_of``. Two statements, each with its own snapshot: call it outside a
    transaction (``pg_stat_activity`` stays as first read until the transaction ends)."""
    with connection.cursor() as cur:
        statements.execute(cur, SQL["run_tally_horizon"], {})
        as_of = cur.fetchone()[0]
        statements.execute(cur, SQL["run_tally_take"], {"as_of": as_of, "run_terminal": TERMINAL})
    return as_of


def runs_by_status(cur) -> dict[str, int]:
    """How many runs there are in each status that has any: a fresh tally and the runs since, or (no fresh
    tally) every run counted."""
    fresh_s = FRESH_INTERVALS * settings.WEFT_RUN_TALLY_S
    statements.execute(cur, SQL["run_tally_read"], {"run_terminal": TERMINAL, "fresh_s": fresh_s})
    tally = cur.fetchall()
    as_of = {row[2] for row in tally}
    if len(tally) != len(TERMINAL) or len(as_of) != 1:
        statements.execute(cur, SQL["runs_counted_by_status"], {})
        return dict(cur.fetchall())
    statements.execute(cur, SQL["runs_since_tally"], {"as_of": as_of.pop()})
    runs = dict(cur.fetchall())
    for status, tallied, _ in tally:
        runs[status] = runs.get(status, 0) + tallied
    return runs


class PeriodicRunTally:
    """Takes the tally at most once every WEFT_RUN_TALLY_S, the first time at the first ``step``."""

    def __init__(self, *, clock=time.monotonic):
        self.clock = clock
        self.next_at = clock()

    def step(self) -> bool:
        """Take the tally if it is due; returns whether it did. A tally that fails is tried again an interval
        later."""
        now = self.clock()
        if now < self.next_at:
            return False
        self.next_at = now + settings.WEFT_RUN_TALLY_S
        run_tally_take()
        return True
