"""Read-only queries over captured logs and run history: log search per run, analytics per workflow."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import connection
from django.utils import timezone

from engine.models import Run, Workflow
from engine.states import RunStatus

MAX_LOG_LINES = 5000
FAILED_OUTCOMES = ("failed", "timeout", "lost")


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
    where = ["s.run_id = %(run)s"]
    params: dict = {"run": run.pk, "limit": limit + 1}
    if node:
        where.append("s.node_id = %(node)s")
        params["node"] = node
    if attempt is not None:
        where.append("a.number = %(attempt)s")
        params["attempt"] = attempt
    if level:
        where.append("upper(l.line->>'level') = upper(%(level)s)")
        params["level"] = level
    if q:
        where.append("l.line->>'msg' ILIKE %(q)s")
        params["q"] = _like(q)
    with connection.cursor() as cur:
        cur.execute(
            f"""
            SELECT s.node_id, a.number, l.idx - 1, (l.line->>'t')::float8, l.line->>'level', l.line->>'msg'
            FROM engine_attempt a
            JOIN engine_steprun s ON s.id = a.step_id
            CROSS JOIN LATERAL jsonb_array_elements(
                CASE WHEN jsonb_typeof(a.logs) = 'array' THEN a.logs ELSE '[]'::jsonb END
            ) WITH ORDINALITY AS l(line, idx)
            WHERE {" AND ".join(where)}
            ORDER BY a.started_at, a.id, l.idx
            LIMIT %(limit)s
            """,  # noqa: S608 (the WHERE clauses are fixed strings; values are parameters)
            params,
        )
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
    params = {"workflow": workflow.pk, "since": since, "bucket": bucket, "failed": list(FAILED_OUTCOMES)}
    with connection.cursor() as cur:
        cur.execute(
            "SELECT status, count(*) FROM engine_run WHERE workflow_id = %(workflow)s AND created_at >= %(since)s "
            "GROUP BY status", params)
        counts = {status: 0 for status in RunStatus.values} | dict(cur.fetchall())
        cur.execute(
            """
            SELECT count(*),
                   percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM finished_at - started_at)),
                   percentile_cont(0.95) WITHIN GROUP (ORDER BY extract(epoch FROM finished_at - started_at)),
                   avg(extract(epoch FROM finished_at - started_at)),
                   max(extract(epoch FROM finished_at - started_at))
            FROM engine_run
            WHERE workflow_id = %(workflow)s AND created_at >= %(since)s AND status = 'succeeded'
              AND started_at IS NOT NULL AND finished_at IS NOT NULL
            """, params)
        n, p50, p95, mean, longest = cur.fetchone()
        cur.execute(
            """
            SELECT s.node_id,
                   count(*) AS attempts,
                   count(*) FILTER (WHERE a.outcome = ANY(%(failed)s)) AS failed_attempts,
                   count(DISTINCT s.id) FILTER (WHERE s.status = 'failed') AS failed_steps,
                   mode() WITHIN GROUP (ORDER BY a.error_type) FILTER (WHERE a.outcome = ANY(%(failed)s))
            FROM engine_steprun s
            JOIN engine_attempt a ON a.step_id = s.id
            WHERE s.run_id = ANY(ARRAY(SELECT id FROM engine_run
                                       WHERE workflow_id = %(workflow)s AND created_at >= %(since)s))
            GROUP BY s.node_id
            HAVING count(*) FILTER (WHERE a.outcome = ANY(%(failed)s)) > 0
            ORDER BY failed_steps DESC, failed_attempts DESC, s.node_id
            LIMIT 10
            """, params)
        failing = [{"node_id": node_id, "attempts": attempts, "failed_attempts": failed_attempts,
                    "failed_steps": failed_steps, "top_error_type": error_type or ""}
                   for node_id, attempts, failed_attempts, failed_steps, error_type in cur.fetchall()]
        cur.execute(
            """
            SELECT date_trunc(%(bucket)s, coalesce(a.queued_at, a.started_at)) AS at,
                   count(*), count(*) FILTER (WHERE a.number > 1),
                   count(*) FILTER (WHERE a.outcome = ANY(%(failed)s))
            FROM engine_steprun s
            JOIN engine_attempt a ON a.step_id = s.id
            WHERE s.run_id = ANY(ARRAY(SELECT id FROM engine_run
                                       WHERE workflow_id = %(workflow)s AND created_at >= %(since)s))
            GROUP BY 1
            """, params)
        per_bucket = {at: (attempts, retries, failed) for at, attempts, retries, failed in cur.fetchall()}
        cur.execute(
            """
            SELECT date_trunc(%(bucket)s, created_at), count(*), count(*) FILTER (WHERE status = 'failed')
            FROM engine_run WHERE workflow_id = %(workflow)s AND created_at >= %(since)s GROUP BY 1
            """, params)
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
