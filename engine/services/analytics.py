"""A workflow's run analytics: counts, durations, failing nodes, attempts and retries over time, and spend.

The figures that read every attempt and journal entry of a period (attempts, retries and failures per node and
per day, the model calls and what they cost) are computed per UTC day of the runs' creation. A day before today,
wholly inside the period, whose runs have all finished, is kept (AnalyticsDay) with its runs' count, the sum of
their last event numbers and the prices it was priced with; it is used while all three still match, which any
transition of one of its runs (a retry adds events), a prune or deletion (fewer runs) or a change of
WEFT_LLM_PRICES breaks. The rest (the period's first, partial day, today, a day with a run still going, a day
whose runs changed) is computed at each request. Merging days gives what one pass over the period gives: counts
add up, a node's commonest error type comes from its error types' counts, a model's cost from its calls' costs.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from django.db import connection
from django.utils import timezone

from engine import statements
from engine.integrations.llm_providers import prices
from engine.models import Attempt, JournalEntry, Workflow
from engine.nodes.budget import Spend
from engine.services.spend import models_summary
from engine.states import RUN_TERMINAL, RunStatus, StepStatus

SQL = statements.load(__file__, "sql/analytics.sql")
# The attempts and the model calls of the days not kept, each from the runs of the same periods.
_DAY_ATTEMPTS = statements.compose(SQL["day_attempts"], period_runs=SQL["period_runs"])
_DAY_MODEL_CALLS = statements.compose(SQL["day_model_calls"], period_runs=SQL["period_runs"])
FAILED_OUTCOMES = (Attempt.Outcome.FAILED, Attempt.Outcome.TIMEOUT, Attempt.Outcome.LOST)


@dataclass
class NodeFigures:
    attempts: int = 0
    failed_attempts: int = 0
    failed_steps: int = 0
    errors: Counter = field(default_factory=Counter)  # failed attempts per error type

    @property
    def top_error_type(self) -> str:
        """The commonest error type of the failed attempts; the first in order among equally common ones (as
        PostgreSQL's mode() over sorted values)."""
        if not self.errors:
            return ""
        return min(self.errors.items(), key=lambda kv: (-kv[1], kv[0]))[0]


@dataclass
class Figures:
    nodes: dict[str, NodeFigures] = field(default_factory=dict)
    days: dict[datetime, list[int]] = field(default_factory=dict)  # day queued -> [attempts, retries, failed]
    spend: dict[str, Spend] = field(default_factory=dict)  # per model: calls, tokens, cost

    def add(self, other: Figures) -> None:
        for node_id, theirs in other.nodes.items():
            mine = self.nodes.setdefault(node_id, NodeFigures())
            mine.attempts += theirs.attempts
            mine.failed_attempts += theirs.failed_attempts
            mine.failed_steps += theirs.failed_steps
            mine.errors.update(theirs.errors)
        for at, counts in other.days.items():
            self.days[at] = [a + b for a, b in zip(self.days.get(at, [0, 0, 0]), counts, strict=True)]
        for model, theirs in other.spend.items():
            self.spend.setdefault(model, Spend()).merge(theirs)

    def to_json(self) -> dict:
        return {"nodes": {n: [f.attempts, f.failed_attempts, f.failed_steps, dict(f.errors)]
                          for n, f in self.nodes.items()},
                "days": {at.isoformat(): counts for at, counts in self.days.items()},
                "spend": {model: [s.calls, s.prompt_tokens, s.completion_tokens, s.cost_usd]
                          for model, s in self.spend.items()}}

    @classmethod
    def from_json(cls, data: dict) -> Figures:
        nodes = {n: NodeFigures(a, fa, fs, Counter(errors)) for n, (a, fa, fs, errors) in data["nodes"].items()}
        return cls(nodes=nodes,
                   days={datetime.fromisoformat(at): counts for at, counts in data["days"].items()},
                   spend={model: Spend(calls=n, prompt_tokens=p, completion_tokens=c, cost_usd=cost)
                          for model, (n, p, c, cost) in data["spend"].items()})


def _midnight(at: datetime) -> datetime:
    return at.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


def prices_digest() -> str:
    """What a kept day's costs were priced with (WEFT_LLM_PRICES)."""
    return hashlib.sha256(json.dumps(prices(), sort_keys=True, default=str).encode()).hexdigest()[:16]


@dataclass
class DayRuns:
    """A UTC day's runs (of one workflow, created since a time): how many, the sum of their last event numbers,
    how many have not finished and how many failed."""

    runs: int = 0
    seq_sum: int = 0
    unfinished: int = 0
    failed: int = 0


def _run_days(rows: list[tuple]) -> dict[datetime, DayRuns]:
    """Per UTC day, from the rows of the statement run_days (day, status, runs, their last events' sum)."""
    out: dict[datetime, DayRuns] = {}
    for day, status, runs, seq_sum in rows:
        tally = out.setdefault(day, DayRuns())
        tally.runs += runs
        tally.seq_sum += int(seq_sum)
        if status not in RUN_TERMINAL:
            tally.unfinished += runs
        if status == RunStatus.FAILED:
            tally.failed += runs
    return out


def workflow_figures(cur, workflow_id: int, *, since: datetime, now: datetime,
                     days: dict[datetime, DayRuns]) -> Figures:
    """The figures of the workflow's runs created since ``since``, whose ``days`` are those given
    (``_run_days``): kept days reused, days that can be kept stored."""
    priced = prices_digest()
    first, today = _midnight(since), _midnight(now)
    keepable = {day.date(): (tally.runs, tally.seq_sum) for day, tally in days.items()
                if first < day < today and not tally.unfinished}
    kept: dict[date, Figures] = {}
    if keepable:
        statements.execute(cur, SQL["days_kept"], {"workflow": workflow_id, "days": list(keepable)})
        for day, runs, seq_sum, figures in cur.fetchall():
            data = json.loads(figures)
            if keepable[day] == (runs, seq_sum) and data.get("prices") == priced:
                kept[day] = Figures.from_json(data)
    periods = _periods(since, today, [day for day in days if day.date() not in kept])
    fresh = _attempts(cur, workflow_id, periods)
    for day, figures in _model_calls(cur, workflow_id, periods).items():
        fresh.setdefault(day, Figures()).add(figures)
    to_keep = [{"day": day.isoformat(), "runs": keepable[day][0], "seq_sum": keepable[day][1],
                "figures": {**fresh.get(day, Figures()).to_json(), "prices": priced}}
               for day in keepable if day not in kept]
    if to_keep:
        statements.execute(cur, SQL["days_keep"], {"workflow": workflow_id, "days": json.dumps(to_keep)})
    return _merged({**kept, **fresh})


Periods = tuple[list[datetime], list[datetime | None]]


def _periods(since: datetime, today: datetime, days: list[datetime]) -> Periods:
    """Where the runs whose figures are computed were created: each of ``days`` (UTC midnights that had runs, not
    kept), the period's first from ``since``, and today open-ended (with any later day). Each is read from the
    runs' (workflow, created) index, not the whole period with the kept days filtered out: 24,000 index entries
    read for 800 runs, twice a request (a million runs)."""
    starts, ends = [], []
    for day in sorted({*(d for d in days if d < today), today}):
        starts.append(max(day, since))
        ends.append(day + timedelta(days=1) if day < today else None)
    return starts, ends


def _merged(per_day: dict[date, Figures]) -> Figures:
    total = Figures()
    for figures in per_day.values():
        total.add(figures)
    return total


def _attempts(cur, workflow_id: int, periods: Periods) -> dict[date, Figures]:
    statements.execute(cur, _DAY_ATTEMPTS, {
        "workflow": workflow_id, "starts": periods[0], "ends": periods[1], "failed_outcomes": list(FAILED_OUTCOMES),
        "step_failed": StepStatus.FAILED})
    per_day: dict[date, Figures] = {}
    for kind, day, node_id, error_type, at, n, retries, failed_attempts, failed_steps in cur.fetchall():
        figures = per_day.setdefault(day.date(), Figures())
        if kind == "at":
            figures.days[at] = [n, retries, failed_attempts]
            continue
        node = figures.nodes.setdefault(node_id, NodeFigures())
        if kind == "node":
            node.attempts, node.failed_attempts, node.failed_steps = n, failed_attempts, failed_steps
        elif failed_attempts:
            node.errors[error_type or ""] = failed_attempts
    return per_day


def _model_calls(cur, workflow_id: int, periods: Periods) -> dict[date, Figures]:
    statements.execute(cur, _DAY_MODEL_CALLS, {"workflow": workflow_id, "starts": periods[0],
                                                     "ends": periods[1], "succeeded": JournalEntry.Status.SUCCEEDED})
    per_day: dict[date, Figures] = {}
    for day, model, prompt, completion, n in cur.fetchall():
        per_day.setdefault(day.date(), Figures()).spend.setdefault(model, Spend()).count(model, prompt, completion, n)
    return per_day


def workflow_analytics(workflow: Workflow, *, days: int = 30, now: datetime | None = None,
                       kept_days: bool = True) -> dict:
    """Runs of ``workflow`` created in the last ``days`` days: counts by status, success rate, p50/p95
    duration of succeeded runs, the nodes that fail most, attempts and retries per hour (``days`` <= 2)
    or per day, and the model calls' ``spend``. Per day, the figures over attempts and journal entries are those
    kept of the days whose runs have all finished, and computed for the others (the module doc; ``kept_days``
    False: one pass over the period, nothing kept). The runs' steps are
    found by the runs' ids (``= ANY(ARRAY(...))``, computed once) through the (run, node) index, and their
    attempts through the (step, number) index, whatever the statistics say: joined with the runs, every step was
    scanned while the tables were small (tests/engine/test_seeded_plans.py)."""
    now = now or timezone.now()
    since = now - timedelta(days=days)
    bucket = "hour" if days <= 2 else "day"
    within = {"workflow": workflow.pk, "since": since}
    with connection.cursor() as cur:
        statements.execute(cur, SQL["run_days"], within)
        rows = cur.fetchall()
        counts = {status: 0 for status in RunStatus.values}
        for _, status, runs, _ in rows:
            counts[status] = counts.get(status, 0) + runs
        per_day = _run_days(rows)
        statements.execute(cur, SQL["run_durations"], {**within, "succeeded": RunStatus.SUCCEEDED})
        n, p50, p95, mean, longest = cur.fetchone()
        if bucket == "day" and kept_days:
            figures = workflow_figures(cur, workflow.pk, since=since, now=now, days=per_day)
            nodes, per_bucket, spend = figures.nodes, figures.days, figures.spend
        else:
            nodes, per_bucket = _attempts_in_one_pass(cur, within, bucket)
            spend = _merged(_model_calls(cur, workflow.pk, ([since], [None]))).spend
        failing = [{"node_id": node_id, "attempts": f.attempts, "failed_attempts": f.failed_attempts,
                    "failed_steps": f.failed_steps, "top_error_type": f.top_error_type}
                   for node_id, f in nodes.items() if f.failed_attempts]
        failing = sorted(failing, key=lambda n: (-n["failed_steps"], -n["failed_attempts"], n["node_id"]))[:10]
        if bucket == "day":
            runs_per_bucket = {day: (tally.runs, tally.failed) for day, tally in per_day.items()}
        else:
            statements.execute(cur, SQL["runs_per_bucket"], {**within, "bucket": bucket,
                                                             "run_failed": RunStatus.FAILED})
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
        "spend": models_summary(spend),
    }


def _attempts_in_one_pass(cur, within: dict, bucket: str) -> tuple[dict[str, NodeFigures], dict]:
    """Per node, and per hour or day, the attempts of the period's runs, read in one pass."""
    statements.execute(cur, SQL["attempts_by_node_and_bucket"], {
        **within, "bucket": bucket, "failed_outcomes": list(FAILED_OUTCOMES), "step_failed": StepStatus.FAILED})
    nodes, per_bucket = {}, {}
    for by_node, node_id, at, attempts, retries, failed_attempts, failed_steps, error_type in cur.fetchall():
        if not by_node:
            per_bucket[at] = (attempts, retries, failed_attempts)
        else:
            nodes[node_id] = NodeFigures(attempts, failed_attempts, failed_steps,
                                         Counter({error_type or "": 1}) if failed_attempts else Counter())
    return nodes, per_bucket


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
