"""OpenTelemetry traces: one trace per run, spans run -> step -> attempt -> journal entry.

Off unless an exporter is configured (``WEFT_OTEL_EXPORTER=otlp`` or ``console``, or
``tracing_configure(exporter)`` in tests); when off every function here returns at once.

A run's steps execute in different processes, on different machines, hours apart, so the
parents of an attempt span are never in memory. Their ids are derived instead: the trace id is
the run's UUID, the run span's id a hash of the run id, a step span's id a hash of (run, node,
generation). An attempt span names its step span as parent whether or not that span has been
exported yet; the step span is exported when the step finishes, the run span when the run does
(``trace_tx``), with their real start and end times.

Inside an attempt, each ``ctx.step`` call (an LLM call, a tool call) is a child span, and
``inject_headers`` adds the current span's ``traceparent`` to outgoing HTTP requests.
"""

from __future__ import annotations

import contextlib
import contextvars
import hashlib
import logging
import multiprocessing.util
import os
import threading
import uuid
from datetime import datetime

from django.conf import settings
from opentelemetry import trace
from opentelemetry.sdk.trace.id_generator import IdGenerator, RandomIdGenerator
from opentelemetry.trace import NonRecordingSpan, SpanContext, SpanKind, Status, StatusCode, TraceFlags
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from engine.states import RUN_TERMINAL, STEP_TERMINAL

log = logging.getLogger(__name__)

EXPORTERS = ("", "otlp", "console")
ERROR_OUTCOMES = {"failed", "timeout", "lost"}
# The events that end a step's or a run's span (``step.<status>``, ``run.<status>``): one per terminal status.
STEP_FINISHED_EVENTS = {f"step.{status}": status for status in sorted(STEP_TERMINAL)}
RUN_FINISHED_EVENTS = {f"run.{status}": status for status in sorted(RUN_TERMINAL)}

_lock = threading.Lock()
_state: dict = {"configured": False, "tracer": None, "provider": None}
# (trace id, span id) the next span must get: set while starting a span whose ids are derived.
_forced_ids: contextvars.ContextVar[tuple[int, int] | None] = contextvars.ContextVar("weft_span_ids", default=None)
_propagator = TraceContextTextMapPropagator()


# -- set-up -------------------------------------------------------------------------------------


def tracing_configure(exporter=None) -> None:
    """Turn tracing on: with ``exporter`` (spans exported as they end, e.g. the SDK's
    InMemorySpanExporter), else as WEFT_OTEL_EXPORTER says (``otlp``: batched to
    OTEL_EXPORTER_OTLP_ENDPOINT; ``console``: printed; empty: off)."""
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SimpleSpanProcessor

    with _lock:
        _shutdown_locked()
        if exporter is not None:
            processor = SimpleSpanProcessor(exporter)
        elif settings.WEFT_OTEL_EXPORTER == "otlp":
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            processor = BatchSpanProcessor(OTLPSpanExporter())
        elif settings.WEFT_OTEL_EXPORTER == "console":
            processor = BatchSpanProcessor(ConsoleSpanExporter())
        else:
            _state.update(configured=True, tracer=None, provider=None)
            return
        resource = Resource.create({"service.name": os.environ.get("OTEL_SERVICE_NAME") or "weft"})
        provider = TracerProvider(resource=resource, id_generator=_DerivedIdGenerator())
        provider.add_span_processor(processor)
        # django-q2's worker processes end through multiprocessing, which skips atexit handlers but runs
        # its own finalizers: export what is still batched when a worker is recycled or stopped.
        if exporter is None:
            multiprocessing.util.Finalize(provider, provider.shutdown, exitpriority=10)
        _state.update(configured=True, provider=provider, tracer=provider.get_tracer("weft"))


def tracing_disable() -> None:
    """Turn tracing off (flushing and shutting down the exporter); the next use reads the settings again."""
    with _lock:
        _shutdown_locked()
        _state.update(configured=False, tracer=None, provider=None)


def tracing_flush() -> None:
    provider = _state["provider"]
    if provider is not None:
        provider.force_flush()


def _shutdown_locked() -> None:
    if _state["provider"] is not None:
        _state["provider"].shutdown()


def tracer():
    """The tracer, or None when tracing is off. Configured from the settings on first use in a process."""
    if not _state["configured"]:
        tracing_configure()
    return _state["tracer"]


def enabled() -> bool:
    return tracer() is not None


class _DerivedIdGenerator(IdGenerator):
    """Random ids, except while ``_forced_ids`` holds the ids of a run or step span."""

    def __init__(self):
        self._random = RandomIdGenerator()

    def generate_span_id(self) -> int:
        forced = _forced_ids.get()
        return forced[1] if forced else self._random.generate_span_id()

    def generate_trace_id(self) -> int:
        forced = _forced_ids.get()
        return forced[0] if forced else self._random.generate_trace_id()


# -- ids ----------------------------------------------------------------------------------------


def run_trace_id(run_id) -> int:
    return uuid.UUID(str(run_id)).int


def _derived_span_id(*parts) -> int:
    digest = hashlib.blake2b("\x1f".join(str(p) for p in parts).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") or 1


def run_span_id(run_id) -> int:
    return _derived_span_id("run", run_id)


def step_span_id(run_id, node_id: str, generation: int) -> int:
    return _derived_span_id("step", run_id, node_id, generation)


def _parent(trace_id: int, span_id: int):
    span = NonRecordingSpan(SpanContext(trace_id, span_id, is_remote=True, trace_flags=TraceFlags(TraceFlags.SAMPLED)))
    return trace.set_span_in_context(span)


def current_ids() -> dict:
    """``{"trace_id", "span_id"}`` of the current span (for log lines), or {} when there is none."""
    if _state["tracer"] is None:
        return {}
    ctx = trace.get_current_span().get_span_context()
    if not ctx.is_valid:
        return {}
    return {"trace_id": f"{ctx.trace_id:032x}", "span_id": f"{ctx.span_id:016x}"}


# -- spans --------------------------------------------------------------------------------------


@contextlib.contextmanager
def attempt_span(*, run_id, node_id: str, node_type: str, generation: int, attempt: int, queue: str, worker: str):
    """The span of one attempt of one step (current while the node runs); yields None when tracing is off."""
    t = tracer()
    if t is None:
        yield None
        return
    parent = _parent(run_trace_id(run_id), step_span_id(run_id, node_id, generation))
    attributes = {"weft.run_id": str(run_id), "weft.node_id": node_id, "weft.node_type": node_type,
                  "weft.attempt": attempt, "weft.queue": queue, "weft.worker": worker}
    with t.start_as_current_span(f"attempt {node_id}#{attempt}", context=parent, kind=SpanKind.INTERNAL,
                                 attributes=attributes) as span:
        yield span


def attempt_outcome(span, outcome: str, error: BaseException | None = None) -> None:
    if span is None:
        return
    span.set_attribute("weft.outcome", outcome)
    if outcome in ERROR_OUTCOMES:
        if error is not None:
            span.record_exception(error)
        span.set_status(Status(StatusCode.ERROR, f"{type(error).__name__}: {error}"[:500] if error else outcome))


@contextlib.contextmanager
def journal_span(journal, key: str):
    """A span around one ``ctx.step`` call; marks whether it replayed a recorded result."""
    t = tracer()
    if t is None:
        yield
        return
    replayed_before = journal.replayed
    with t.start_as_current_span(f"journal {key}", attributes={"weft.journal.key": key,
                                                                 "weft.attempt": journal.attempt}) as span:
        try:
            yield
        finally:
            span.set_attribute("weft.journal.replayed", journal.replayed > replayed_before)


def inject_headers(headers: dict) -> dict:
    """Add ``traceparent`` (and ``tracestate``) of the current span to ``headers``, in place and returned.

    Unchanged when tracing is off or no span is current, so callers may always use it.
    """
    if _state["tracer"] is not None and trace.get_current_span().get_span_context().is_valid:
        _propagator.inject(headers)
    return headers


def trace_tx(tx) -> None:
    """Once ``tx`` (a RunTx) commits, export the spans of the steps and the run it finished."""
    trace_finished(tx.run.pk, tx.events, run=tx.run)


def trace_finished(run_id, events: list, *, run=None) -> None:
    """Once the transaction commits, export the spans of the steps that ``events`` (PendingEvents) finished,
    and of the run if they finished it (``run``, the Run: read from the database then if not given)."""
    if tracer() is None:
        return
    from django.db import transaction

    transaction.on_commit(lambda: _export_finished(run_id, list(events), run))


def _export_finished(run_id, events, run) -> None:
    try:
        _export_finished_spans(run_id, events, run)
    except Exception:  # tracing must never break a run
        log.warning("could not export the spans of run %s", run_id, exc_info=True)


def _export_finished_spans(run_id, events, run) -> None:
    from django.db.models import Min
    from django.db.models.functions import Coalesce
    from django.utils import timezone

    from engine.models import Run, StepRun, Workflow

    finished_steps = {e.node_id for e in events if e.type in STEP_FINISHED_EVENTS}
    run_status = next((RUN_FINISHED_EVENTS[e.type] for e in events if e.type in RUN_FINISHED_EVENTS), None)
    now = timezone.now()
    trace_id = run_trace_id(run_id)
    run_parent = _parent(trace_id, run_span_id(run_id))
    rows = (StepRun.objects.filter(run_id=run_id, node_id__in=finished_steps)
            .annotate(first=Min(Coalesce("attempts__queued_at", "attempts__started_at")))
            .values_list("node_id", "node_type", "queue", "generation", "status", "error", "first", "finished_at"))
    for node_id, node_type, queue, generation, status, error, first, finished_at in rows:
        end = finished_at or now
        _export_span(f"step {node_id}", trace_id=trace_id, span_id=step_span_id(run_id, node_id, generation),
                     parent=run_parent, start=first or end, end=end,
                     attributes={"weft.run_id": str(run_id), "weft.node_id": node_id, "weft.node_type": node_type,
                                 "weft.queue": queue, "weft.status": status, "weft.generation": generation},
                     error=error if status in ("failed", "upstream_failed") else None)
    if run_status and run is None:  # finished by a statement that had no Run at hand
        run = Run.objects.filter(pk=run_id).first()
    if run_status and run is not None:
        slug = Workflow.objects.filter(pk=run.workflow_id).values_list("slug", flat=True).first()
        _export_span(f"run {slug}", trace_id=trace_id, span_id=run_span_id(run_id),
                     parent=trace.set_span_in_context(trace.INVALID_SPAN), start=run.started_at or run.created_at,
                     end=now, attributes={"weft.run_id": str(run_id), "weft.workflow": slug or "",
                                          "weft.status": run_status},
                     error=(run.error or run_status) if run_status == "failed" else None)


def _export_span(name: str, *, trace_id: int, span_id: int, parent, start: datetime, end: datetime,
                 attributes: dict, error: str | None) -> None:
    t = tracer()
    token = _forced_ids.set((trace_id, span_id))
    try:
        span = t.start_span(name, context=parent, kind=SpanKind.INTERNAL, attributes=attributes,
                            start_time=_ns(start))
    finally:
        _forced_ids.reset(token)
    if error:
        span.set_status(Status(StatusCode.ERROR, str(error)[:500]))
    span.end(end_time=max(_ns(end), _ns(start)))


def _ns(when: datetime) -> int:
    return int(when.timestamp() * 1_000_000_000)
