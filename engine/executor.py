"""The django-q2 task: claim a step, run its node, heartbeat, record the result.

django-q2 may deliver the same message twice or late (see DESIGN.md); the claim is a
compare-and-set on (status=queued, attempt=n), so only one delivery runs a given
attempt, and every later write is fenced by the attempt number.
"""

from __future__ import annotations

import contextlib
import functools
import io
import logging
import os
import signal
import socket
import threading
import time
import traceback
from dataclasses import dataclass

from django.conf import settings
from django.db import DatabaseError, connection
from django.db.models.functions import Now
from django_q.exceptions import TimeoutException

from engine import scheduler, templating
from engine.context import StepContext, Wait, upstream_outputs
from engine.dbretry import with_db_retry
from engine.exceptions import (
    InDoubt,
    LeaseLost,
    StepCancelled,
    StepTimeout,
    TemplateFailed,
)
from engine.models import Attempt, StepRun
from engine.nodes import registry
from engine.observability import hooks as observe
from engine.readiness import RetryPolicy
from engine.runtx import CLAIM_SQL, Continuation, RunTx, StepRef, step_claim_sql
from engine.security import json_for_storage, storable_text
from engine.states import RunStatus, StepStatus

log = logging.getLogger(__name__)

# Errors that retrying cannot fix.
NOT_RETRYABLE = {"NonDeterministicReplay", "TemplateFailed", "OutputTooLarge", "OutputInvalid", "TaskNotFound",
                 "NodeTypeNotFound", "ArgumentsInvalid", "HostNotAllowed", "AgentStopped"}


class OutputTooLarge(Exception):
    pass


@dataclass
class Claim:
    step: StepRun
    node: object  # graph.NodeSpec
    run_inputs: dict
    graph: object  # graph.Graph of the run's version


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def step_claim(*, run_id, step_id: int, attempt: int, worker: str) -> Claim | None:
    """queued -> running for exactly one delivery of (step, attempt), with a lease on the database clock."""
    with connection.cursor() as cur:  # a duplicate or stale delivery goes away without taking the run's lock
        cur.execute("SELECT node_id FROM engine_steprun WHERE id = %s AND status = 'queued' AND attempt = %s",
                    [step_id, attempt])
        row = cur.fetchone()
    if row is None:
        return None  # someone else has it, or it moved on
    with RunTx(run_id) as tx:
        if tx.run_status != RunStatus.RUNNING:
            tx.step_set_status(StepRef(step_id, row[0], StepStatus.QUEUED, attempt), StepStatus.CANCELLED,
                               attempt=attempt)
            return None
        step = step_claim_sql(CLAIM_SQL, {"id": step_id, "attempt": attempt, "worker": worker})
        if step is None:
            return None
        tx.claim_event(step)
        return _claim(tx, step)


def _claim(tx: RunTx, step: StepRun) -> Claim:
    return Claim(step=step, node=tx.graph.nodes[step.node_id], run_inputs=tx.run.inputs, graph=tx.graph)


class Liveness(threading.Thread):
    """Extends the lease every lease/3 seconds and notices cancellation or a lost lease."""

    _SQL = (
        "UPDATE engine_steprun SET lease_expires_at = now() + make_interval(secs => %s), heartbeat_at = now() "
        "WHERE id = %s AND attempt = %s AND status = 'running' "
        "RETURNING (SELECT status FROM engine_run WHERE id = engine_steprun.run_id)"
    )

    def __init__(self, step_id: int, attempt: int):
        super().__init__(name=f"weft-heartbeat-{step_id}", daemon=True)
        self.step_id, self.attempt = step_id, attempt
        self.lease_s = settings.WEFT_LEASE_S
        self.lost = False
        self.cancelled = False
        self._stop_event = threading.Event()

    def run(self) -> None:
        try:
            while not self._stop_event.wait(self.lease_s / 3):
                self.beat()
        finally:
            connection.close()

    def beat(self) -> None:
        try:
            with connection.cursor() as cur:
                cur.execute(self._SQL, [self.lease_s, self.step_id, self.attempt])
                row = cur.fetchone()
        except DatabaseError as exc:
            log.warning("heartbeat for step %s failed, will retry: %s", self.step_id,
                        str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__)
            connection.close()
            return
        if row is None:
            self.lost = True
        elif row[0] == RunStatus.CANCELLED:
            self.cancelled = True

    def stop(self) -> None:
        self._stop_event.set()


@contextlib.contextmanager
def deadline(seconds: float | None):
    """Raise StepTimeout in the main thread after ``seconds``, restoring django-q2's own alarm afterwards."""
    if not seconds or threading.current_thread() is not threading.main_thread():
        yield
        return
    previous_handler = signal.getsignal(signal.SIGALRM)
    previous_remaining = signal.getitimer(signal.ITIMER_REAL)[0]
    started = time.monotonic()

    def on_alarm(signum, frame):
        raise StepTimeout(f"step exceeded its timeout of {seconds:g} s")

    signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous_handler)
        if previous_remaining:
            left = previous_remaining - (time.monotonic() - started)
            signal.setitimer(signal.ITIMER_REAL, max(left, 0.01))


class LogCapture(logging.Handler):
    """Collects a node's log records and prints for one attempt, bounded in lines and line length."""

    MAX_LINE = 10_000

    def __init__(self, max_lines: int):
        super().__init__(level=logging.DEBUG)
        self.max_lines = max_lines
        self.lines: list[dict] = []
        self.dropped = 0
        self._thread = threading.get_ident()

    def emit(self, record: logging.LogRecord) -> None:
        if record.thread != self._thread or record.name.startswith(("django", "engine.executor")):
            return
        self.add(record.levelname, record.getMessage())

    def add(self, level: str, message: str) -> None:
        if len(self.lines) >= self.max_lines:
            self.dropped += 1
            return
        if len(message) > self.MAX_LINE:
            message = message[: self.MAX_LINE] + f"... [{len(message) - self.MAX_LINE} characters truncated]"
        message = storable_text(message)
        self.lines.append({"t": round(time.time(), 3), "level": level, "msg": message})

    def result(self) -> list[dict]:
        if self.dropped:
            return [*self.lines, {"t": round(time.time(), 3), "level": "WARNING",
                                  "msg": f"[{self.dropped} more log lines dropped: WEFT_MAX_LOG_LINES is "
                                         f"{self.max_lines}]"}]
        return self.lines


class _PrintSink(io.TextIOBase):
    def __init__(self, capture: LogCapture):
        self.capture = capture
        self._buffer = ""

    def write(self, text: str) -> int:
        self._buffer += text
        while "\n" in self._buffer:
            line, self._buffer = self._buffer.split("\n", 1)
            self.capture.add("PRINT", line)
        if len(self._buffer) > LogCapture.MAX_LINE:
            self.capture.add("PRINT", self._buffer)
            self._buffer = ""
        return len(text)

    def flush_rest(self) -> None:
        if self._buffer:
            self.capture.add("PRINT", self._buffer)
            self._buffer = ""


def execute_step(run_id: str, step_id: int, attempt: int) -> str:
    """Entry point of every broker message: run one attempt of one step, at most once.

    The transaction that records a success also claims this worker's next step of the same run
    and queue (through the same compare-and-set claim and a lease, so a crash loses nothing):
    a successor it made ready, else a step of the run already queued there (a fan-out's
    siblings). That step then has no broker row and no claim transaction of its own, and the
    worker runs it at once instead of waiting a broker poll. Other ready successors get broker
    rows for other workers. Bounded by WEFT_CONTINUE_MAX_S.
    """
    started = time.monotonic()
    worker = worker_id()
    claim = step_claim(run_id=run_id, step_id=step_id, attempt=attempt, worker=worker)
    if claim is None:
        return "not claimed"
    result = None
    while claim is not None:
        keep_going = time.monotonic() - started <= _continue_budget(claim.step.queue)
        outcome, claim = _execute_claimed(claim, worker=worker, keep_going=keep_going)
        result = outcome if result is None else result
    return result


def _continue_budget(queue: str) -> float:
    timeout = settings.WEFT_QUEUES.get(queue, {}).get("timeout", 60)
    return min(settings.WEFT_CONTINUE_MAX_S, timeout / 4)


def _execute_claimed(claim: Claim, *, worker: str, keep_going: bool) -> tuple[str, Claim | None]:
    """Run a claimed attempt and record it; returns the outcome and the next claim, if this worker continues."""
    step, attempt = claim.step, claim.step.attempt
    with observe.observe_attempt(step, attempt=attempt, worker=worker) as observed:
        liveness = Liveness(step.pk, attempt)
        liveness.start()
        capture = LogCapture(settings.WEFT_MAX_LOG_LINES)
        observed.watch_logs(capture)
        try:
            outcome = _run_node(claim, attempt=attempt, worker=worker, liveness=liveness, capture=capture)
        finally:
            liveness.stop()
        observed.ran(outcome)
        logs = capture.result()
    continuation = Continuation(worker=worker, queue=step.queue) if keep_going and outcome[0] == "succeeded" else None
    next_claim = with_db_retry(
        lambda: _record(claim, attempt=attempt, outcome=outcome, logs=logs, continuation=continuation),
        what=f"recording step {step.node_id!r}")
    return outcome[0], next_claim


def _run_node(claim: Claim, *, attempt: int, worker: str, liveness: Liveness, capture: LogCapture) -> tuple:
    step, node = claim.step, claim.node
    ctx = None
    root = logging.getLogger()
    root.addHandler(capture)
    sink = _PrintSink(capture)
    try:
        if templating.has_templates(node.config):
            upstream, nodes_ctx = upstream_outputs(run_id=step.run_id, graph=claim.graph, node=node)
            template_ctx = {"inputs": claim.run_inputs, "nodes": nodes_ctx, "upstream": upstream,
                            "run": {"id": str(step.run_id)}}
        else:  # no template to render: the outputs upstream are read only if the node asks for ctx.upstream
            upstream = functools.partial(_direct_upstream, run_id=step.run_id, graph=claim.graph, node=node)
            template_ctx = {}
        config = templating.render(node.config, template_ctx, path=f"nodes.{node.id}.config")
        ctx = StepContext(run_id=step.run_id, step_id=step.pk, node_id=step.node_id, node_type=step.node_type,
                          attempt=attempt, generation=step.generation, config=config, run_inputs=claim.run_inputs,
                          upstream=upstream, worker=worker, liveness=liveness)
        impl = registry.get_node_type(step.node_type).cls()
        timeout = node.timeout_s or settings.WEFT_QUEUES.get(step.queue, {}).get("timeout")
        with contextlib.redirect_stdout(sink), deadline(timeout):
            result = impl.run(ctx, dict(config))
        sink.flush_rest()
        if isinstance(result, Wait):
            return ("waiting", result, ctx.metrics)
        size = len(json_for_storage(result))  # OutputInvalid for NaN, Infinity or NUL: PostgreSQL refuses them
        if size > settings.WEFT_MAX_OUTPUT_BYTES:
            raise OutputTooLarge(f"step output is {size} bytes; the limit (WEFT_MAX_OUTPUT_BYTES) is "
                                 f"{settings.WEFT_MAX_OUTPUT_BYTES}")
        return ("succeeded", result, ctx.metrics)
    except InDoubt as exc:
        return ("in_doubt", exc, _metrics(ctx))
    except StepCancelled as exc:
        return ("cancelled", exc, _metrics(ctx))
    except LeaseLost as exc:
        return ("lost", exc, _metrics(ctx))
    except (StepTimeout, TimeoutException) as exc:
        return ("timeout", exc, _metrics(ctx))
    except TemplateFailed as exc:
        return ("failed", exc, _metrics(ctx))
    except (TypeError, ValueError) as exc:
        if "not JSON serializable" in str(exc):
            return ("failed", OutputTooLarge(f"step output is not JSON-serialisable: {exc}"), _metrics(ctx))
        return ("failed", exc, _metrics(ctx))
    except Exception as exc:
        return ("failed", exc, _metrics(ctx))
    finally:
        sink.flush_rest()
        root.removeHandler(capture)


def _direct_upstream(*, run_id, graph, node) -> dict:
    return upstream_outputs(run_id=run_id, graph=graph, node=node)[0]


def _metrics(ctx) -> dict:
    """What the node measured before it stopped (tokens spent by a failed attempt still count)."""
    return ctx.metrics if ctx is not None else {}


def _record(claim: Claim, *, attempt: int, outcome: tuple, logs: list[dict],
            continuation: Continuation | None = None) -> Claim | None:
    """Record the attempt's outcome; with ``continuation``, also claim the worker's next step of the run."""
    kind, value, metrics = outcome
    step, node = claim.step, claim.node
    error, error_type, tb = "", "", ""
    if isinstance(value, BaseException):
        error = storable_text(f"{type(value).__name__}: {value}"[:20000])
        error_type = type(value).__name__
        tb = storable_text("".join(traceback.format_exception(value))[-50000:])
    with RunTx(step.run_id, continuation=continuation) as tx:
        # The status this attempt left the step in; every write below is a compare-and-set on it and the attempt.
        ref = StepRef(step.pk, step.node_id, StepStatus.RUNNING, attempt)
        attempt_outcome = kind
        if kind == "succeeded":  # the Attempt row is finished in the same statement
            won = scheduler.step_record_success(tx, ref, attempt=attempt, output=value,
                                                attempt_row={"logs": logs, "metrics": metrics or {}})
        elif kind == "waiting":
            won = scheduler.step_record_wait(tx, ref, attempt=attempt, reason=value.reason, detail=value.detail,
                                             wake_in=value.wake_in)
        elif kind == "in_doubt":
            attempt_outcome = "waiting"
            won = scheduler.step_record_wait(tx, ref, attempt=attempt, reason="in_doubt",
                                             detail={"key": value.key, "message": str(value)}, wake_in=None)
        elif kind == "cancelled":
            won = scheduler.step_record_cancelled(tx, ref, attempt=attempt)
        else:
            if kind == "lost":
                attempt_outcome = "lost"
            policy = RetryPolicy.from_config(node.retry, settings.WEFT_DEFAULT_RETRY)
            retryable = error_type not in NOT_RETRYABLE and policy.should_retry(attempt=attempt, error_type=error_type)
            retry_in = policy.delay_after(attempt) if retryable else None
            won = scheduler.step_record_failure(tx, ref, attempt=attempt, error=error, retry_in=retry_in)
            if won and retry_in is not None:
                observe.retry_scheduled(step)
        if not won:
            _fenced_out(step, attempt=attempt, logs=logs, error=error)
            return None
        if kind != "succeeded":
            Attempt.objects.filter(step_id=step.pk, number=attempt).update(
                finished_at=Now(), outcome=attempt_outcome, error=error, error_type=error_type, traceback=tb,
                logs=logs, metrics=metrics or {},
            )
        tx.continue_with_queued()
        return _claim(tx, continuation.claimed) if continuation and continuation.claimed else None


def _fenced_out(step: StepRun, *, attempt: int, logs: list[dict], error: str) -> None:
    now = StepRun.objects.filter(pk=step.pk).values_list("status", "attempt").first()
    log.warning("attempt %s of step %s was fenced out (now %s, attempt %s); result discarded",
                attempt, step.node_id, *(now or ("gone", None)))
    Attempt.objects.filter(step_id=step.pk, number=attempt, outcome=Attempt.Outcome.RUNNING).update(
        finished_at=Now(), logs=logs, error=f"result discarded (fenced out): {error}"[:20000],
    )
