"""Prometheus metrics, safe across django-q2's worker processes.

Counters and histograms are incremented where things happen (engine.worker, its recovery) and never
cost a database query. Processes started by ``runworkers`` and ``up`` write them to files in
``WEFT_METRICS_DIR`` (prometheus-client's multiprocess mode, ``PROMETHEUS_MULTIPROC_DIR``), so a
worker that dies or is recycled keeps its counts. The gauges that describe the system rather
than one process -- queue depth, oldest waiting step, runs by status, live clusters -- are read
from the database when ``/metrics`` is scraped (``engine.operations.gauges.DatabaseCollector``).

Metric objects are created on first use, so a process can switch to multiprocess mode
(``multiprocess_prepare``) after this module was imported.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram, generate_latest, values
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.samples import Sample

log = logging.getLogger(__name__)

# Step attempts run from milliseconds (transforms) to hours (agents).
DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600,
                    7200, 14400, 43200)
WAIT_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600)


class Metrics:
    """Every metric a Weft process updates itself."""

    def __init__(self, registry: CollectorRegistry = REGISTRY):
        step = ["queue", "node_type"]
        self.steps_started = Counter(
            "weft_steps_started", "Step attempts started (claimed by a worker, or run inline)", step, registry=registry)
        self.steps_finished = Counter(
            "weft_steps_finished", "Step attempts finished, by outcome (succeeded, failed, timeout, lost, "
            "cancelled, waiting)", [*step, "outcome"], registry=registry)
        self.step_duration = Histogram(
            "weft_step_duration_seconds", "Time a step attempt spent executing its node", step,
            buckets=DURATION_BUCKETS, registry=registry)
        self.queue_wait = Histogram(
            "weft_step_queue_wait_seconds", "Time from a step being queued to a worker starting it", ["queue"],
            buckets=WAIT_BUCKETS, registry=registry)
        self.retries = Counter(
            "weft_step_retries", "Retries scheduled by a retry policy after a failed, timed-out or lost attempt",
            step, registry=registry)
        self.lost = Counter(
            "weft_attempts_lost", "Attempts whose worker stopped heartbeating, found and recovered by recovery",
            step, registry=registry)
        self.llm_tokens = Counter(
            "weft_llm_tokens", "LLM tokens used by llm and agent nodes, by model and kind (prompt, completion)",
            ["model", "kind"], registry=registry)
        self.llm_cost = Counter(
            "weft_llm_cost_usd", "Estimated USD spent on model calls of llm and agent nodes (WEFT_LLM_PRICES)",
            ["model"], registry=registry)
        self.budget_stops = Counter(
            "weft_budget_stops", "Model calls not made because they could pass a budget, by scope (node, run)",
            ["scope"], registry=registry)
        self.webhook_deliveries = Counter(
            "weft_webhook_deliveries", "Requests to webhook endpoints, by outcome (accepted, duplicate, "
            "bad_signature, invalid, too_large, rate_limited, refused, not_found)", ["outcome"], registry=registry)
        self.events_received = Counter(
            "weft_events_received", "Outside events received (POST /api/events/), resends not counted",
            registry=registry)
        self.event_runs_started = Counter(
            "weft_event_runs_started", "Runs started by event triggers", registry=registry)
        self.websocket_clients = Gauge(
            "weft_websocket_clients", "Open websocket connections of the live UI", registry=registry,
            multiprocess_mode="livesum")
        self.schedule_fires = Counter(
            "weft_schedule_fires", "Runs started by schedules, by kind of fire (scheduled, backfill, manual)",
            ["kind"], registry=registry)
        self.schedule_misses = Counter(
            "weft_schedule_misses", "Schedule fire times skipped because they were older than the catch-up "
            "window when found", registry=registry)
        self.schedule_overlap_skips = Counter(
            "weft_schedule_overlap_skips", "Schedule fire times skipped by the overlap policy (skip, buffer_one)",
            ["policy"], registry=registry)
        self.schedule_fire_lag = Histogram(
            "weft_schedule_fire_lag_seconds", "Time from a scheduled fire being due to its run starting",
            buckets=WAIT_BUCKETS, registry=registry)


_metrics: Metrics | None = None
# (metric, label values) -> child: prometheus-client's labels() validates on every call.
_children: dict[tuple, object] = {}


def metrics() -> Metrics:
    global _metrics
    if _metrics is None:
        _metrics = Metrics()
    return _metrics


def _child(metric, *labels: str):
    key = (metric, labels)
    child = _children.get(key)
    if child is None:
        child = _children[key] = metric.labels(*labels)
    return child


# -- what the executor, recovery and consumers report ---------------------------------------------


def attempt_started(*, queue: str, node_type: str, queued_at: datetime | None) -> None:
    m = metrics()
    _child(m.steps_started, queue, node_type).inc()
    if queued_at is not None:
        _child(m.queue_wait, queue).observe(max(time.time() - queued_at.timestamp(), 0.0))


def attempt_finished(*, queue: str, node_type: str, outcome: str, duration_s: float | None) -> None:
    m = metrics()
    _child(m.steps_finished, queue, node_type, outcome).inc()
    if duration_s is not None:
        _child(m.step_duration, queue, node_type).observe(duration_s)


def retry_scheduled(*, queue: str, node_type: str) -> None:
    _child(metrics().retries, queue, node_type).inc()


def attempt_lost(*, queue: str, node_type: str) -> None:
    """Recovery found an attempt whose lease expired: it counts as lost and as finished."""
    m = metrics()
    _child(m.lost, queue, node_type).inc()
    _child(m.steps_finished, queue, node_type, "lost").inc()


def llm_usage(attempt_metrics: dict) -> None:
    """Tokens an attempt's llm/agent calls used (its ``ctx.metrics``, as ``llm_providers.add_usage`` fills it)."""
    model = attempt_metrics.get("model")
    if not model:
        return
    m = metrics()
    for kind in ("prompt", "completion"):
        tokens = attempt_metrics.get(f"{kind}_tokens") or 0
        if isinstance(tokens, int) and tokens > 0:
            m.llm_tokens.labels(str(model)[:100], kind).inc(tokens)
    cost = attempt_metrics.get("cost_usd")
    if isinstance(cost, (int, float)) and cost > 0:
        m.llm_cost.labels(str(model)[:100]).inc(cost)
    if attempt_metrics.get("budget_stopped") in ("node", "run"):
        m.budget_stops.labels(attempt_metrics["budget_stopped"]).inc()


def schedule_fired(*, kind: str, lag_s: float | None = None) -> None:
    m = metrics()
    _child(m.schedule_fires, kind).inc()
    if lag_s is not None:
        m.schedule_fire_lag.observe(max(lag_s, 0.0))


def schedule_missed(count: int) -> None:
    if count:
        metrics().schedule_misses.inc(count)


def schedule_overlap_skipped(*, policy: str) -> None:
    _child(metrics().schedule_overlap_skips, policy).inc()


def webhook_delivery(*, outcome: str) -> None:
    _child(metrics().webhook_deliveries, outcome).inc()


def event_received(*, started: int) -> None:
    m = metrics()
    m.events_received.inc()
    if started:
        m.event_runs_started.inc(started)


def websocket_opened() -> None:
    metrics().websocket_clients.inc()


def websocket_closed() -> None:
    metrics().websocket_clients.dec()


# -- multiprocess mode --------------------------------------------------------------------------


def multiprocess_prepare(path: Path | str) -> None:
    """Make this process, and the processes it starts, write metrics to files in ``path``.

    Files of processes that are no longer alive (an earlier start) are removed first; those of
    live processes -- another ``runworkers`` or web server sharing the directory -- are kept.
    """
    import psutil

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    for stale in path.glob("*.db"):
        pid = stale.stem.rsplit("_", 1)[-1]
        if not pid.isdigit() or not psutil.pid_exists(int(pid)):
            stale.unlink(missing_ok=True)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(path)
    if _metrics is None:
        values.ValueClass = values.get_value_class()
    elif not in_multiprocess_mode():
        log.warning("metrics were recorded in memory before multiprocess mode was set up; they are not exported")


def in_multiprocess_mode() -> bool:
    return values.ValueClass is not values.MutexValue


# -- exposition ---------------------------------------------------------------------------------


def exposition(metrics_dir: Path | str | None, *, collectors=()) -> bytes:
    """The Prometheus text exposition: this process's metrics and those other processes wrote to
    ``metrics_dir``, merged into one family per name, and what ``collectors`` add (the database gauges of
    ``engine.operations.gauges``)."""
    registry = CollectorRegistry()
    registry.register(_MergedCollector(metrics_dir))
    for collector in collectors:
        registry.register(collector)
    return generate_latest(registry)


class _MergedCollector:
    """Own-process metrics (unless they already live in files) plus every process's files, one family per name."""

    def __init__(self, metrics_dir):
        self.metrics_dir = metrics_dir

    def collect(self):
        sources: list[Iterable] = []
        directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR") if in_multiprocess_mode() else None
        directory = directory or (str(self.metrics_dir) if self.metrics_dir else None)
        if directory and os.path.isdir(directory):
            sources.append(MultiProcessCollector(None, path=directory).collect())
        if not in_multiprocess_mode():
            metrics()  # so that a process that recorded nothing yet still exposes every metric, at zero
            sources.append(REGISTRY.collect())
        return _merge(sources)


def _merge(sources: list[Iterable]):
    families: dict[str, object] = {}
    samples: dict[str, dict[tuple, Sample]] = {}
    for source in sources:
        for family in source:
            if family.name not in families:
                families[family.name] = family
                samples[family.name] = {}
            merged = samples[family.name]
            for s in family.samples:
                if s.name.endswith("_created"):
                    continue  # creation times of per-process series do not add up
                key = (s.name, tuple(sorted(s.labels.items())))
                previous = merged.get(key)
                merged[key] = s if previous is None else s._replace(value=previous.value + s.value)
    for name, family in families.items():
        family.samples = list(samples[name].values())
        yield family
