"""Read-only queries over captured logs and run history: log search per run, analytics per workflow."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import connection
from django.utils import timezone

from engine import statements
from engine.models import Attempt, Run, Workflow
from engine.states import RunStatus, StepStatus

SQL = statements.load(__file__, "sql/queries.sql")
MAX_LOG_LINES = 5000
FAILED_OUTCOMES = (Attempt.Outcome.FAILED, Attempt.Outcome.TIMEOUT, Attempt.Outcome.LOST)


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


def workflow_analytics(workflow: Workflow, *, days: int = 30, now: datetime | None = None) -> dict:
    """Runs of ``workflow`` created in the last ``days`` days: counts by status, success rate, p50/p95
    duration of succeeded runs, the nodes that fail most, and attempts and retries per hour (``days`` <= 2)
    or per day. The runs' steps are found by the runs' ids (``= ANY(ARRAY(...))``, computed once) through the
    (run, node) index, and their attempts through the (step, number) index, whatever the statistics say: joined
    with the runs, every step was scanned while the tables were small (tests/engine/test_seeded_plans.py)."""
    now = now or timezone.now()
    since = now - timedelta(days=days)
    bucket = "hour" if days <= 2 else "day"
    within = {"workflow": workflow.pk, "since": since}
    failed_outcomes = list(FAILED_OUTCOMES)
    with connection.cursor() as cur:
        statements.execute(cur, SQL["runs_by_status"], within)
        counts = {status: 0 for status in RunStatus.values} | dict(cur.fetchall())
        statements.execute(cur, SQL["run_durations"], {**within, "succeeded": RunStatus.SUCCEEDED})
        n, p50, p95, mean, longest = cur.fetchone()
        statements.execute(cur, SQL["failing_nodes"], {**within, "failed_outcomes": failed_outcomes,
                                                       "step_failed": StepStatus.FAILED})
        failing = [{"node_id": node_id, "attempts": attempts, "failed_attempts": failed_attempts,
                    "failed_steps": failed_steps, "top_error_type": error_type or ""}
                   for node_id, attempts, failed_attempts, failed_steps, error_type in cur.fetchall()]
        statements.execute(cur, SQL["attempts_per_bucket"], {**within, "bucket": bucket,
                                                             "failed_outcomes": failed_outcomes})
        per_bucket = {at: (attempts, retries, failed) for at, attempts, retries, failed in cur.fetchall()}
        statements.execute(cur, SQL["runs_per_bucket"], {**within, "bucket": bucket, "run_failed": RunStatus.FAILED})
        runs_per_bucket = {at: (total, failed) for at, total, failed in cur.fetchall()}
    finished = counts[RunStatus.SUCCEEDED] + counts[RunStatus.FAILED] + counts[RunStatus.CANCELLED]
    return {
        "workflow": workflow.slug,
        "days": days,
        "since": since,
        "bucket": bucket,
        "runs": counts,
        "runs_total": sum(counts.values()),
        "success_rate": round(counts[RunStatus.SUCCEEDED] / finished, 4) if finished else None,
        "duration_s": {"count": n, "p50": _round(p50), "p95": _round(p95), "mean": _round(mean),
                       "max": _round(longest)},
        "failing_nodes": failing,
        "series": _series(since, now, bucket, per_bucket, runs_per_bucket),
    }


def _round(value) -> float | None:
    return None if value is None else round(float(value), 3)


def _series(since: datetime, now: datetime, bucket: str, attempts: dict, runs: dict) -> list[dict]:
    """One point per hour or day from ``since`` to ``now``, zero where nothing happened."""
    step = timedelta(hours=1) if bucket == "hour" else timedelta(days=1)
    start = since.replace(minute=0, second=0, microsecond=0)
    if bucket == "day":
        start = start.replace(hour=0)
    points = []
    at = start
    while at <= now:
        n_attempts, retries, failed_attempts = attempts.get(at, (0, 0, 0))
        n_runs, failed_runs = runs.get(at, (0, 0))
        points.append({"at": at, "runs": n_runs, "failed_runs": failed_runs, "attempts": n_attempts,
                       "retries": retries, "failed_attempts": failed_attempts})
        at += step
    return points
