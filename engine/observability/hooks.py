"""The calls the worker (engine.worker.run, engine.worker.record), recovery and inline steps make: one object per
attempt, and a few one-liners.

Everything here is in-process bookkeeping (a context variable, in-memory or mmap counters, a
span when tracing is on): no database query is added to a step's path.
"""

from __future__ import annotations

import time

from django.db import transaction

from engine.observability import livelogs, metrics, tracing
from engine.observability.logging import log_context

# An attempt outcome's kind -> the Attempt outcome it is recorded as.
ATTEMPT_OUTCOME = {"in_doubt": "waiting"}


class AttemptObserver:
    """``with observe_attempt(claim.step, attempt=n, worker=w) as observed:`` around running and recording an
    attempt: binds the log context, counts the start (and the time spent queued), holds the attempt
    span; ``observed.ran(...)`` counts the finish and its duration."""

    def __init__(self, step, *, attempt: int, worker: str):
        self.step = step
        self.attempt = attempt
        self.worker = worker
        self.span = None
        self._capture = None
        self._log_cm = None
        self._span_cm = None
        self._started = 0.0

    def __enter__(self) -> AttemptObserver:
        step = self.step
        self._log_cm = log_context(run_id=str(step.run_id), step_id=step.pk, node_id=step.node_id,
                                   attempt=self.attempt, queue=step.queue, worker=self.worker)
        self._log_cm.__enter__()
        if tracing.enabled():
            self._span_cm = tracing.attempt_span(
                run_id=step.run_id, node_id=step.node_id, node_type=step.node_type, generation=step.generation,
                attempt=self.attempt, queue=step.queue, worker=self.worker)
            self.span = self._span_cm.__enter__()
        metrics.attempt_started(queue=step.queue, node_type=step.node_type, queued_at=step.queued_at)
        self._started = time.monotonic()
        return self

    def watch_logs(self, capture) -> None:
        """Show ``capture``'s lines (the worker's LogCapture) while the attempt runs."""
        self._capture = capture
        livelogs.watch(step_id=self.step.pk, attempt=self.attempt, capture=capture)

    def ran(self, *, kind: str, error: BaseException | None, attempt_metrics: dict) -> None:
        """The attempt's outcome ``kind`` (engine.worker.outcome), the error it ended with, what it measured."""
        self._unwatch()
        recorded = ATTEMPT_OUTCOME.get(kind, kind)
        if kind != "lost":  # the lease expired: recovery counted this attempt lost (``attempt_lost``)
            metrics.attempt_finished(queue=self.step.queue, node_type=self.step.node_type, outcome=recorded,
                                     duration_s=time.monotonic() - self._started)
        if attempt_metrics:
            metrics.llm_usage(attempt_metrics)
        tracing.attempt_outcome(self.span, recorded, error)

    def __exit__(self, *exc) -> None:
        self._unwatch()
        if self._span_cm is not None:
            self._span_cm.__exit__(*exc)
        self._log_cm.__exit__(*exc)

    def _unwatch(self) -> None:
        if self._capture is not None:
            livelogs.unwatch(step_id=self.step.pk, attempt=self.attempt)
            self._capture = None


def observe_attempt(step, *, attempt: int, worker: str) -> AttemptObserver:
    return AttemptObserver(step, attempt=attempt, worker=worker)


def inline_step_ran(*, queue: str, node_type: str, outcome: str, duration_s: float) -> None:
    """A step of an inline type ran in the transaction that made it ready: once that commits, it counts as a started and
    finished attempt, with the labels of an attempt a worker ran (it waited in no queue: no queue wait)."""

    def count() -> None:
        metrics.attempt_started(queue=queue, node_type=node_type, queued_at=None)
        metrics.attempt_finished(queue=queue, node_type=node_type, outcome=outcome, duration_s=duration_s)

    transaction.on_commit(count)  # a transaction that rolls back (and is tried again) ran no step


def retry_scheduled(step) -> None:
    """A retry policy gave ``step`` (a StepRun) another attempt."""
    metrics.retry_scheduled(queue=step.queue, node_type=step.node_type)


def attempt_lost(step, *, retried: bool) -> None:
    """Recovery found ``step``'s attempt lost (its lease expired) and applied its retry policy."""
    metrics.attempt_lost(queue=step.queue, node_type=step.node_type)
    if retried:
        metrics.retry_scheduled(queue=step.queue, node_type=step.node_type)


trace_tx = tracing.trace_tx
journal_span = tracing.journal_span
