"""Read-only queries for interfaces (API, pages): lists, details, events, timelines.

Nothing here changes state; status changes go through engine.core.transitions (from RunTx, in
engine.services.scheduler, engine.core.outcomes and engine.worker).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

from django.db.models import Count, OuterRef, Prefetch, Q, QuerySet, Subquery, TextField
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Cast, Coalesce
from django.utils import timezone

from engine.core.versions import version_graph
from engine.exceptions import NotFound
from engine.models import Attempt, Event, JournalEntry, Run, StepRun, Workflow, WorkflowVersion
from engine.states import RunStatus


def workflows_search(*, q: str = "", include_archived: bool = False) -> QuerySet[Workflow]:
    """Workflows matching ``q`` in slug, name or description, with their current version number,
    run count and last run's status."""
    qs = Workflow.objects.select_related("current_version")
    if not include_archived:
        qs = qs.filter(archived=False)
    if q:
        qs = qs.filter(Q(slug__icontains=q) | Q(name__icontains=q) | Q(description__icontains=q))
    last = Run.objects.filter(workflow=OuterRef("pk")).order_by("-created_at")
    return qs.annotate(
        runs_total=Count("runs"),
        last_run_status=Subquery(last.values("status")[:1]),
    ).order_by("slug")


def workflow_run_counts(workflow: Workflow) -> dict[str, int]:
    """Runs of the workflow per status (every status present, zero when none)."""
    counts = {status: 0 for status in RunStatus.values}
    for status, n in Run.objects.filter(workflow=workflow).values_list("status").annotate(n=Count("id")):
        counts[status] = n
    return counts


def workflow_last_run(workflow: Workflow) -> Run | None:
    return Run.objects.filter(workflow=workflow).order_by("-created_at").first()


def workflow_versions(workflow: Workflow) -> QuerySet[WorkflowVersion]:
    return workflow.versions.select_related("created_by").order_by("-number")


def workflow_version_get(workflow: Workflow, number: int) -> WorkflowVersion:
    try:
        return workflow.versions.select_related("created_by").get(number=number)
    except WorkflowVersion.DoesNotExist:
        raise NotFound(f"workflow {workflow.slug!r} has no version {number}") from None


def runs_filter(
    *,
    workflow: str | None = None,
    status: str | None = None,
    started_after: datetime | None = None,
    started_before: datetime | None = None,
    trigger: str | None = None,
) -> QuerySet[Run]:
    """Runs, newest first, filtered by workflow slug, status, start (creation) time and trigger kind; with their
    workflow, version (its number, not its definition) and creator."""
    qs = Run.objects.select_related("workflow", "version", "created_by").defer("version__definition")
    if workflow:  # the workflow's id first (an InitPlan): its runs are then read newest first from its index
        qs = qs.filter(workflow_id=Subquery(Workflow.objects.filter(slug=workflow).values("pk")))
    if status:
        qs = qs.filter(status=status)
    if started_after:
        qs = qs.filter(created_at__gte=started_after)
    if started_before:
        qs = qs.filter(created_at__lt=started_before)
    if trigger:
        qs = qs.alias(trigger_kind=KeyTextTransform("kind", "trigger")).filter(trigger_kind=trigger)
    return qs


def _attempts_count() -> Coalesce:
    """A step's attempts, counted through the (step, number) index one step at a time: as a join of the run's
    steps with the attempts, a 1,000-step run's were found by scanning every attempt while the table was
    small (tests/engine/test_seeded_plans.py)."""
    return Coalesce(Subquery(Attempt.objects.filter(step=OuterRef("pk")).order_by().values("step")
                             .annotate(n=Count("pk")).values("n")), 0)


def run_attempts(run: Run) -> QuerySet[Attempt]:
    """The run's attempts, found by its steps' ids through the (step, number) index (``any_of``)."""
    return Attempt.objects.filter(step__any_of=StepRun.objects.filter(run=run).values("pk"))


def run_get(run_id) -> Run:
    try:
        return Run.objects.select_related("workflow", "version", "created_by", "parent_step").get(pk=run_id)
    except (Run.DoesNotExist, ValueError):
        raise NotFound(f"run {run_id} does not exist") from None


# What a run's detail shows of each step (api.serializers.StepSerializer).
STEP_ROW_FIELDS = ("id", "node_id", "node_type", "queue", "status", "attempt", "waiting_reason", "waiting_detail",
                   "output", "error", "worker", "queued_at", "started_at", "finished_at", "next_attempt_at",
                   "wake_at", "map_index")


# The JSON columns a step row carries as their text, under these names: the run detail writes them as read.
STEP_JSON_TEXT = {"output": "output_text", "waiting_detail": "waiting_text"}


def run_steps(run: Run, *, fields: tuple[str, ...] = STEP_ROW_FIELDS) -> list[dict]:
    """The run's steps in the workflow's topological order, as dicts of ``fields`` (with the id and node id) and
    ``attempts_count``; a mapped node once, with ``map_summary`` (its items counted by status), never its items.
    Plain rows, not model instances: a 1,000-step run's detail held 1,000 instances with their state objects,
    which kept young-generation collections busy while the request ran. The JSON columns (``STEP_JSON_TEXT``)
    come as their text, never parsed: the waiting detail always, as ``waiting_text``."""
    plain = [f for f in dict.fromkeys(("id", "node_id", *fields)) if f not in STEP_JSON_TEXT]
    texts = {STEP_JSON_TEXT[f]: Cast(f, TextField()) for f in ("waiting_detail", *fields) if f in STEP_JSON_TEXT}
    rows = {r["node_id"]: r for r in StepRun.objects.filter(run=run, map_parent__isnull=True)
            .annotate(attempts_count=_attempts_count()).values(*plain, "attempts_count", **texts)}
    graph = version_graph(run.version)
    ordered = [rows[n] for n in graph.topological_order() if n in rows]
    mapped = [r for r in ordered if graph.nodes[r["node_id"]].for_each is not None]
    summaries = _map_summaries(run, [(r["id"], r["node_id"], json.loads(r["waiting_text"] or "null"))
                                     for r in mapped], graph)
    for row in mapped:
        row["map_summary"] = summaries[row["id"]]
    return ordered


def step_get(run: Run, node_id: str) -> StepRun:
    """A step of the run by node id, or an item of a mapped node by ``x[i]``."""
    try:
        step = StepRun.objects.annotate(attempts_count=Count("attempts")).get(run=run, node_id=node_id)
    except StepRun.DoesNotExist:
        raise NotFound(f"run {run.pk} has no step {node_id!r}") from None
    graph = version_graph(run.version)
    if step.map_parent_id is None and node_id in graph.nodes and graph.nodes[node_id].for_each is not None:
        step.map_summary = _map_summaries(run, [(step.pk, step.node_id, step.waiting_detail)], graph)[step.pk]
    return step


def _map_summaries(run: Run, steps: list[tuple[int, str, dict | None]], graph) -> dict[int, dict]:
    """Each mapped node's step (id, node id, waiting detail) to its map summary: items, counts by status, failed
    items, settings."""
    if not steps:
        return {}
    counts: dict[int, dict[str, int]] = {pk: {} for pk, _, _ in steps}
    for parent, status, n in (StepRun.objects.filter(run=run, map_parent__in=list(counts))
                              .values_list("map_parent", "status").annotate(n=Count("id"))):
        counts[parent][status] = n
    out = {}
    for pk, node_id, detail in steps:
        node, detail = graph.nodes[node_id], detail or {}
        out[pk] = {"items": sum(counts[pk].values()), "counts": counts[pk], "failed": detail.get("failed", []),
                   "max_parallel": node.max_parallel, "on_item_failure": node.on_item_failure}
    return out


def map_items(run: Run, node_id: str, *, status: str | None = None) -> QuerySet[StepRun]:
    """The items of a mapped node's step in item order (optionally those in ``status``), each with
    ``attempts_count`` and its attempts as ``attempt_rows``."""
    step = step_get(run, node_id)
    if getattr(step, "map_summary", None) is None:
        raise NotFound(f"run {run.pk} has no mapped step {node_id!r}")
    qs = StepRun.objects.filter(map_parent=step)
    if status:
        qs = qs.filter(status=status)
    return (qs.order_by("map_index").annotate(attempts_count=_attempts_count())
            .prefetch_related(Prefetch("attempts", Attempt.objects.order_by("number"), to_attr="attempt_rows")))


def step_attempts(step: StepRun) -> QuerySet[Attempt]:
    return Attempt.objects.filter(step=step).order_by("number")


def step_journal(step: StepRun) -> QuerySet[JournalEntry]:
    return JournalEntry.objects.filter(step=step).order_by("position")


def run_events(run: Run, *, after: int = 0, limit: int = 100) -> list[Event]:
    """Events with seq > ``after``, in seq order, at most ``limit``."""
    return list(Event.objects.filter(run=run, seq__gt=after).order_by("seq")[:limit])


@dataclass(slots=True)
class AttemptTiming:
    """An attempt as the timeline shows it: read as plain values, not as a model with its logs."""

    step_id: int
    number: int
    outcome: str
    worker: str
    queued_at: datetime | None
    started_at: datetime
    finished_at: datetime | None


@dataclass
class StepTimeline:
    step: dict  # run_steps' row
    attempts: list[AttemptTiming]
    duration_s: float | None


def _seconds(start, end) -> float | None:
    if start is None or end is None:
        return None
    return max((end - start).total_seconds(), 0.0)


def _weights(rows, now) -> dict[str, float]:
    """Each node's weight on the critical path from its attempts' (node id, map parent's node id or None,
    started, finished) rows: the time they spent executing (started to finished; now, for one still
    running), so time queued, in retry back-off or waiting does not count. A mapped node adds its slowest
    item's time to its own (its items run side by side)."""
    own: dict[str, float] = {}
    items: dict[tuple[str, str], float] = {}
    for node_id, parent, started, finished in rows:
        seconds = _seconds(started, finished or now) or 0.0
        if parent is None:
            own[node_id] = own.get(node_id, 0.0) + seconds
        else:
            items[(parent, node_id)] = items.get((parent, node_id), 0.0) + seconds
    slowest: dict[str, float] = {}
    for (parent, _), seconds in items.items():
        slowest[parent] = max(slowest.get(parent, 0.0), seconds)
    for parent, seconds in slowest.items():
        own[parent] = own.get(parent, 0.0) + seconds
    return own


def run_critical_path(run: Run) -> list[str]:
    """The run's critical path: the one definition the API's timeline, the run view's graph and its
    timeline all show (the run view's snapshot carries it, and it re-reads the timeline as attempts end).

    It is the chain of steps, along the definition's edges, whose weights (``_weights``: time spent
    executing) add up most; ties go to the chain with more steps, then to the one first in topological
    order (``Graph.critical_path``). Empty before any attempt started."""
    rows = run_attempts(run).values_list("step__node_id", "step__map_parent__node_id", "started_at", "finished_at")
    return _critical_path(run, _weights(rows, timezone.now()))


def _critical_path(run: Run, weights: dict[str, float]) -> list[str]:
    return version_graph(run.version).critical_path(weights) if weights else []


def run_timeline(run: Run) -> tuple[list[StepTimeline], list[str]]:
    """Per step (topological order): its attempts and the time it spent executing; and the critical path
    (``run_critical_path``).

    A step's duration is the sum of its attempts' execution times (started to finished; now, for
    one still running), so time spent waiting in a queue or for a retry does not count.
    """
    now = timezone.now()
    steps = run_steps(run, fields=("node_type", "queue", "status"))
    by_step: dict[int, list[AttemptTiming]] = {s["id"]: [] for s in steps}
    rows = []
    timed = run_attempts(run).order_by("step_id", "number").values_list(
        "step_id", "number", "outcome", "worker", "queued_at", "started_at", "finished_at", "step__node_id",
        "step__map_parent__node_id")
    for *fields, node_id, parent_node_id in timed:
        attempt = AttemptTiming(*fields)
        by_step.setdefault(attempt.step_id, []).append(attempt)
        rows.append((node_id, parent_node_id, attempt.started_at, attempt.finished_at))
    out = []
    for step in steps:
        attempts = by_step.get(step["id"], [])
        duration = sum(_seconds(a.started_at, a.finished_at or now) or 0.0 for a in attempts) if attempts else None
        out.append(StepTimeline(step=step, attempts=attempts, duration_s=duration))
    return out, _critical_path(run, _weights(rows, now))


GRID_MAX_RUNS = 100


def workflow_grid(workflow: Workflow, *, runs: int = 25) -> dict:
    """The last ``runs`` runs of a workflow as columns (oldest first) and its steps as rows (the current
    version's topological order, then steps only older versions had): each cell the step's status and
    attempt in that run, or None where that run's version had no such step."""
    columns = list(Run.objects.filter(workflow=workflow).select_related("version")
                   .order_by("-created_at", "-id")[:max(1, min(runs, GRID_MAX_RUNS))])[::-1]
    cells: dict[str, dict] = {}
    for run_id, node_id, status, attempt in StepRun.objects.filter(run__in=[r.pk for r in columns]).values_list(
            "run_id", "node_id", "status", "attempt"):
        cells.setdefault(node_id, {})[run_id] = {"status": status, "attempt": attempt}
    order = version_graph(workflow.current_version_id).topological_order() if workflow.current_version_id else []
    node_ids = [n for n in order if n in cells] + sorted(n for n in cells if n not in set(order))
    return {
        "runs": [{"id": r.pk, "status": r.status, "version": r.version.number, "created_at": r.created_at}
                 for r in columns],
        "rows": [{"node_id": n, "cells": [cells[n].get(r.pk) for r in columns]} for n in node_ids],
    }
