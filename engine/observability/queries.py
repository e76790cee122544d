"""Read-only queries over captured logs: log search per run."""

from __future__ import annotations

from dataclasses import dataclass

from django.db import connection

from engine import statements
from engine.models import Run

SQL = statements.load(__file__, "sql/queries.sql")
MAX_LOG_LINES = 5000


@dataclass
class LogLine:
    node_id: str
    attempt: int
    index: int  # position in the attempt's captured logs
    t: float | None
    level: str
    msg: str


def _like(text: str) -> str:
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def run_logs_search(run: Run, *, q: str = "", node: str = "", attempt: int | None = None, level: str = "",
                    limit: int = 500) -> tuple[list[LogLine], bool]:
    """Captured log lines of a run's attempts, in the order they were written per attempt, attempts in
    the order they started. ``q``: case-insensitive substring of the message; ``node``, ``attempt``,
    ``level``: exact. Returns at most ``limit`` lines and whether more matched."""
    params = {"run": run.pk, "node": node, "attempt": attempt, "level": level, "q": _like(q) if q else "",
              "limit": limit + 1}
    with connection.cursor() as cur:
        statements.execute(cur, SQL["run_logs_search"], params)
        rows = cur.fetchall()
    lines = [LogLine(node_id=n, attempt=a, index=i, t=t, level=lvl or "", msg=m or "") for n, a, i, t, lvl, m in rows]
    return lines[:limit], len(lines) > limit
