"""The django-q2 task: claim a step, run its node, heartbeat, record the result.

django-q2 may deliver the same message twice or late (docs/reliability.md); the claim is a
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
from datetime import timedelta

from django.conf import settings
from django.db import DatabaseError, connection
from django.db.models.functions import Now
from django_q.exceptions import TimeoutException

from engine.core import hotpath, outcomes, registry
from engine.core.context import StepContext, Wait, upstream_outputs
from engine.core.dbretry import prepared_cursor, with_db_retry
from engine.core.readiness import RetryPolicy, retry_decision
from engine.core.runtx import CLAIM_SQL, Continuation, RunTx, StepRef, step_claim_sql
from engine.core.security import json_for_storage, storable_text
from engine.core.versions import version_graph
from engine.exceptions import (
    InDoubt,
    LeaseLost,
    StepCancelled,
    StepTimeout,
    TemplateFailed,
)
from engine.models import Attempt, StepRun
from engine.observability import hooks as observe
from engine.services import scheduler
from engine.states import RunStatus, StepStatus
from engine.templating import templates as templating

log = logging.getLogger(__name__)

class OutputTooLarge(Exception):
    pass


@dataclass
class Claim:
    step: StepRun
    node: object  # graph.NodeSpec
    run_inputs: dict
    graph: object  # graph.Graph of the run's version
    # When the node started and finished (time.monotonic()): a batch records several attempts at once, and
    # their times are set from these, back from the recording statement's time on the database clock.
    started: float = 0.0
    finished: float = 0.0
    # The run's last event sequence number when the transaction that claimed the step committed (None: unknown).
    run_seq: int | None = None

    def ago(self) -> dict:
        now = time.monotonic()
        return {"ago_start": max(now - self.started, 0.0), "ago_end": max(now - self.finished, 0.0)}

    def attempt_row(self, logs: list[dict], metrics: dict | None) -> dict:
        """What a success statement writes to the attempt's row: its logs, metrics and times."""
        return {"logs": logs, "metrics": metrics or {}, **self.ago()}


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def step_claim(*, run_id, step_id: int, attempt: int, worker: str, node_id: str | None = None,
               seq: int | None = None) -> Claim | None:
    """queued -> running for exactly one delivery of (step, attempt), with a lease on the database clock.
    ``node_id`` and ``seq``: the caller has just seen the step queued (and its node, and the run's last event
    sequence number), so nothing is checked first; if the step or its run moved on since (another worker took
    the step first, or another step of the run finished), the step is looked at again before the run is locked.
    """
    if node_id is not None and seq is not None:
        claim = _claim_one(run_id=run_id, step_id=step_id, attempt=attempt, worker=worker, node_id=node_id, seq=seq)
        if claim is not None:
            return claim
        node_id = None  # the step, or its run, moved on since the caller saw it: look again
    if node_id is None:
        with prepared_cursor() as cur:  # a duplicate or stale delivery goes away without taking the run's lock
            cur.execute(_PRECHECK_SQL, [step_id, StepStatus.QUEUED, attempt])
            row = cur.fetchone()
        if row is None:
            return None  # someone else has it, or it moved on
        node_id, seq = row
        claim = _claim_one(run_id=run_id, step_id=step_id, attempt=attempt, worker=worker, node_id=node_id, seq=seq)
        if claim is not None:
            return claim
    with RunTx(run_id) as tx:  # the run moved on again, or stopped
        if tx.run_status != RunStatus.RUNNING:
            tx.step_set_status(StepRef(step_id, node_id, StepStatus.QUEUED, attempt), StepStatus.CANCELLED,
                               attempt=attempt)
            return None
        claimed = step_claim_sql(CLAIM_SQL, {"id": step_id, "attempt": attempt, "worker": worker})
        if not claimed:
            return None
        step = claimed[0]
        tx.claim_event(step)
        claim = _claim(tx, step)
    claim.run_seq = tx.run.last_seq
    return claim


def _claim_one(*, run_id, step_id: int, attempt: int, worker: str, node_id: str, seq: int) -> Claim | None:
    """The claim in one statement (engine.core.hotpath), if the run's last sequence number is still ``seq``."""
    one = hotpath.step_claim_one(run_id=run_id, seq=seq, step_id=step_id, node_id=node_id, attempt=attempt,
                                 worker=worker)
    if one is None:
        return None
    step, version_id, inputs, last_seq = one
    graph = version_graph(version_id)
    return Claim(step=step, node=graph.nodes[node_id], run_inputs=inputs, graph=graph, run_seq=last_seq)


_PRECHECK_SQL = ("SELECT s.node_id, r.last_seq FROM engine_steprun s JOIN engine_run r ON r.id = s.run_id "
                 "WHERE s.id = %s AND s.status = %s AND s.attempt = %s")


def _claim(tx: RunTx, step: StepRun) -> Claim:
    return Claim(step=step, node=tx.graph.nodes[step.node_id], run_inputs=tx.run.inputs, graph=tx.graph)


class Liveness:
    """Extends the lease every lease/3 seconds and notices cancellation or a lost lease.

    The beats come from one heartbeat thread per process (``_Heartbeats``), so a step that takes
    a millisecond costs no thread of its own.
    """

    _SQL = (
        "UPDATE engine_steprun SET lease_expires_at = now() + make_interval(secs => %s), heartbeat_at = now() "
        "WHERE id = %s AND attempt = %s AND status = %s "
        "RETURNING (SELECT status FROM engine_run WHERE id = engine_steprun.run_id)"
    )

    # The leases of a batch's claimed steps that have not started yet (see execute_step).
    _HELD_SQL = (
        "UPDATE engine_steprun SET lease_expires_at = now() + make_interval(secs => %s), heartbeat_at = now() "
        "WHERE id = ANY(%s::bigint[]) AND status = %s "
        "AND (id, attempt) IN (SELECT * FROM unnest(%s::bigint[], %s::int[]))"
    )

    def __init__(self, step_id: int, attempt: int, *, held: list[tuple[int, int]] = ()):
        self.step_id, self.attempt = step_id, attempt
        self.held = list(held)
        self.lease_s = settings.WEFT_LEASE_S
        self.lost = False
        self.cancelled = False
        self.next_beat = 0.0

    def start(self) -> None:
        self.next_beat = time.monotonic() + self.lease_s / 3
        _Heartbeats.get().add(self)

    def beat(self) -> None:
        try:
            with prepared_cursor() as cur:
                cur.execute(self._SQL, [self.lease_s, self.step_id, self.attempt, StepStatus.RUNNING])
                row = cur.fetchone()
                if self.held:
                    ids = [h[0] for h in self.held]
                    cur.execute(self._HELD_SQL, [self.lease_s, ids, StepStatus.RUNNING, ids, [h[1] for h in self.held]])
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
        _Heartbeats.get().discard(self)


class _Heartbeats(threading.Thread):
    """The process's heartbeat thread: beats for every running Liveness when its next beat is due."""

    _instance: _Heartbeats | None = None
    _instance_lock = threading.Lock()

    def __init__(self):
        super().__init__(name="weft-heartbeat", daemon=True)
        self.pid = os.getpid()
        self.live: set[Liveness] = set()
        self.lock = threading.Lock()
        self.wake = threading.Event()
        # When the thread next wakes by itself (time.monotonic()); it recomputes this, under the lock, from every
        # Liveness then present before each wait, so one added later must wake it only if it is due sooner.
        self.wake_at = float("inf")

    @classmethod
    def get(cls) -> _Heartbeats:
        with cls._instance_lock:
            if cls._instance is None or cls._instance.pid != os.getpid() or not cls._instance.is_alive():
                cls._instance = cls()  # first use, or a forked child (threads do not survive fork)
                cls._instance.start()
            return cls._instance

    def add(self, liveness: Liveness) -> None:
        with self.lock:
            self.live.add(liveness)
            due_sooner = liveness.next_beat < self.wake_at
        if due_sooner:  # else the thread wakes in time by itself: a chain of short steps costs it no wake-up
            self.wake.set()

    def discard(self, liveness: Liveness) -> None:
        with self.lock:
            self.live.discard(liveness)

    def run(self) -> None:
        try:
            while True:
                self.wake.clear()  # before the snapshot: a Liveness added after it wakes the wait below
                with self.lock:
                    live = list(self.live)
                now = time.monotonic()
                for liveness in live:
                    if liveness.next_beat <= now:
                        liveness.next_beat = now + liveness.lease_s / 3
                        with self.lock:
                            still = liveness in self.live
                        if still:
                            try:
                                liveness.beat()
                            except Exception:  # one bad beat must not stop the beats of every step here
                                log.warning("heartbeat for step %s failed", liveness.step_id, exc_info=True)
                                connection.close()
                with self.lock:
                    self.wake_at = min((lv.next_beat for lv in self.live), default=now + 60)
                self.wake.wait(max(self.wake_at - time.monotonic(), 0.01))
        finally:
            connection.close()


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
        if record.thread != self._thread or record.name.startswith(("django", "engine.worker.executor")):
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

    The transaction that records a success also claims this worker's next steps of the same run
    and queue (through the same compare-and-set claim and a lease each, so a crash loses nothing):
    successors it made ready, else steps of the run already queued there (a fan-out's siblings).
    Those steps have no broker row and no claim transaction of their own, and the worker runs them
    at once instead of waiting a broker poll; other ready successors get broker rows for other
    workers. While steps finish quickly the worker claims more at a time (a batch, recorded in one
    transaction), up to WEFT_CONTINUE_BATCH; a slow step brings the batch back to one, and claimed
    steps not started within WEFT_CONTINUE_WINDOW_S are handed back to the queue. Bounded by
    WEFT_CONTINUE_MAX_S.
    """
    started = time.monotonic()
    worker = worker_id()
    claim = step_claim(run_id=run_id, step_id=step_id, attempt=attempt, worker=worker)
    if claim is None:
        return "not claimed"
    result, batch, size = None, [claim], 1
    while batch:
        queue = batch[0].step.queue
        batch_started = time.monotonic()
        done, released = _run_batch(batch, worker=worker)
        per_step = (time.monotonic() - batch_started) / len(done)
        size = min(size * 2, settings.WEFT_CONTINUE_BATCH) if per_step < _FAST_STEP_S and not released else 1
        keep_going = (not released and time.monotonic() - started <= _continue_budget(queue)
                      and all(outcome[0] == "succeeded" for _, outcome, _ in done))
        continuation = Continuation(worker=worker, queue=queue, want=size) if keep_going else None
        what = f"recording step {done[0][0].step.node_id!r}"
        batch = (with_db_retry(lambda: _record_one(done[0], worker=worker, continuing=continuation is not None),  # noqa: B023
                               what=what) if not released and len(done) == 1 else None)
        if batch is None:
            batch = with_db_retry(lambda: _record_batch(done, released, continuation=continuation),  # noqa: B023
                                  what=what)
        result = done[0][1][0] if result is None else result
        if not batch and not released and time.monotonic() - started <= _continue_budget(queue):
            batch, size = _claim_queued(queue, worker=worker), 1
    return result


# The oldest queued steps of a queue, any run: what the broker would deliver next.
_OLDEST_QUEUED_SQL = ("SELECT s.run_id, s.id, s.attempt, s.node_id, r.last_seq FROM engine_steprun s "
                      "JOIN engine_run r ON r.id = s.run_id WHERE s.queue = %s AND s.status = 'queued' "
                      "ORDER BY s.queued_at LIMIT %s")


def _claim_queued(queue: str, *, worker: str, tries: int = 4) -> list[Claim]:
    """The worker has nothing left of its run: claim the oldest queued step of another run on its queue, as
    that step's broker delivery would (same claim, same transaction), without waiting for the delivery.
    Its broker message goes in the claim; a copy already prefetched by a cluster finds the step claimed."""
    with prepared_cursor() as cur:
        cur.execute(_OLDEST_QUEUED_SQL, [queue, tries])
        candidates = cur.fetchall()
    for run_id, step_id, attempt, node_id, seq in candidates:
        claim = with_db_retry(functools.partial(step_claim, run_id=run_id, step_id=step_id, attempt=attempt,
                                                worker=worker, node_id=node_id, seq=seq), what="claiming a queued step")
        if claim is not None:
            return [claim]
    return []


# A batch grows while its steps take less than this each (no-op and control steps, cheap transforms).
_FAST_STEP_S = 0.02


def _continue_budget(queue: str) -> float:
    timeout = settings.WEFT_QUEUES.get(queue, {}).get("timeout", 60)
    return min(settings.WEFT_CONTINUE_MAX_S, timeout / 4)


def _run_batch(batch: list[Claim], *, worker: str) -> tuple[list[tuple], list[Claim]]:
    """Run claimed attempts one after another: returns [(claim, outcome, logs)] and the claims handed back
    unstarted because the batch ran longer than WEFT_CONTINUE_WINDOW_S."""
    started = time.monotonic()
    done = []
    for i, claim in enumerate(batch):
        if i and time.monotonic() - started > settings.WEFT_CONTINUE_WINDOW_S:
            return done, batch[i:]
        held = [(c.step.pk, c.step.attempt) for c in batch[i + 1:]]
        claim.started = time.monotonic()
        outcome, logs = _execute_claimed(claim, worker=worker, held=held)
        claim.finished = time.monotonic()
        done.append((claim, outcome, logs))
    return done, []


def _execute_claimed(claim: Claim, *, worker: str, held: list[tuple[int, int]]) -> tuple[tuple, list[dict]]:
    """Run one claimed attempt; the heartbeat also keeps the leases of the batch's steps still ``held``."""
    step, attempt = claim.step, claim.step.attempt
    with observe.observe_attempt(step, attempt=attempt, worker=worker) as observed:
        liveness = Liveness(step.pk, attempt, held=held)
        liveness.start()
        capture = LogCapture(settings.WEFT_MAX_LOG_LINES)
        observed.watch_logs(capture)
        try:
            outcome = _run_node(claim, attempt=attempt, worker=worker, liveness=liveness, capture=capture)
        finally:
            liveness.stop()
        observed.ran(outcome)
        logs = capture.result()
    return outcome, logs


def _record_one(done: tuple, *, worker: str, continuing: bool) -> list[Claim] | None:
    """One successful step in one statement (engine.core.hotpath): with the claim of its only successor for a
    ``continuing`` worker (returned), or with its run's success if it was the run's last step (nothing to
    claim). None when neither applies or the statement found the run moved on; the caller then records the
    outcome through ``_record_batch``."""
    claim, outcome, logs = done
    step = claim.step
    if outcome[0] != "succeeded" or claim.run_seq is None:
        return None
    if hotpath.finishes_run(claim.graph, step.node_id):
        finished = hotpath.finish_step_record(run_id=step.run_id, seq=claim.run_seq, step_id=step.pk,
                                              node_id=step.node_id, attempt=step.attempt, output=outcome[1],
                                              attempt_row=claim.attempt_row(logs, outcome[2]),
                                              sinks=claim.graph.sinks())
        return [] if finished is not None else None
    if not continuing:
        return None
    next_node = hotpath.chain_successor(claim.graph, step.node_id, queue=step.queue)
    if next_node is None:
        return None
    claimed = hotpath.chain_step_record(run_id=step.run_id, seq=claim.run_seq, step_id=step.pk,
                                        node_id=step.node_id, attempt=step.attempt, next_node_id=next_node,
                                        output=outcome[1], worker=worker,
                                        attempt_row=claim.attempt_row(logs, outcome[2]))
    if claimed is None:
        return None
    next_step, last_seq = claimed
    return [Claim(step=next_step, node=claim.graph.nodes[next_node], run_inputs=claim.run_inputs, graph=claim.graph,
                  run_seq=last_seq)]


def _record_batch(done: list[tuple], released: list[Claim], *, continuation: Continuation | None) -> list[Claim]:
    """Record a batch's outcomes in one transaction of their run, hand back what did not start, and claim
    the continuing worker's next steps."""
    with RunTx(done[0][0].step.run_id, continuation=continuation) as tx:
        succeeded = [d for d in done if d[1][0] == "succeeded"]
        if len(succeeded) > 1 and tx.run_status == RunStatus.RUNNING:  # one statement for all of them
            refs = [StepRef(c.step.pk, c.step.node_id, StepStatus.RUNNING, c.step.attempt) for c, _, _ in succeeded]
            won = outcomes.steps_record_success(tx, [
                (ref, ref.attempt, outcome[1], claim.attempt_row(logs, outcome[2]))
                for ref, (claim, outcome, logs) in zip(refs, succeeded, strict=True)])
            for (claim, _, logs), ok in zip(succeeded, won, strict=True):
                if not ok:
                    _fenced_out(claim.step, attempt=claim.step.attempt, logs=logs, error="")
            done = [d for d in done if d[1][0] != "succeeded"]
        for claim, outcome, logs in done:
            _record(tx, claim, attempt=claim.step.attempt, outcome=outcome, logs=logs)
        if released:
            tx.release([c.step for c in released])
        tx.continue_with_queued()
        claims = [_claim(tx, step) for step in continuation.claimed] if continuation else []
    for claim in claims:
        claim.run_seq = tx.run.last_seq
    return claims


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
                          upstream=upstream, worker=worker, liveness=liveness, run_start=scheduler.run_start)
        impl = registry.get_node_type(step.node_type).cls()
        timeout = node.timeout_s or settings.WEFT_QUEUES.get(step.queue, {}).get("timeout")
        with contextlib.redirect_stdout(sink), deadline(timeout):
            result = impl.run(ctx, dict(config))
        sink.flush_rest()
        if isinstance(result, Wait):
            return ("waiting", result, ctx.metrics)
        try:
            size = len(json_for_storage(result))  # OutputInvalid for NaN, Infinity or NUL: PostgreSQL refuses them
        except TypeError as exc:  # the encoder's own: a value JSON has no form for (a set, an object)
            raise OutputTooLarge(f"step output is not JSON-serialisable: {exc}") from None
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


def _record(tx: RunTx, claim: Claim, *, attempt: int, outcome: tuple, logs: list[dict]) -> bool:
    """Record the attempt's outcome in ``tx``; returns False if the attempt was fenced out."""
    kind, value, metrics = outcome
    step, node = claim.step, claim.node
    error, error_type, tb = "", "", ""
    if isinstance(value, BaseException):
        error = storable_text(f"{type(value).__name__}: {value}"[:20000])
        error_type = type(value).__name__
        tb = storable_text("".join(traceback.format_exception(value))[-50000:])
    # The status this attempt left the step in; every write below is a compare-and-set on it and the attempt.
    ref = StepRef(step.pk, step.node_id, StepStatus.RUNNING, attempt)
    attempt_outcome = kind
    if kind == "succeeded":  # the Attempt row is finished in the same statement
        won = outcomes.step_record_success(tx, ref, attempt=attempt, output=value,
                                           attempt_row=claim.attempt_row(logs, metrics))
    elif kind == "waiting":
        won = outcomes.step_record_wait(tx, ref, attempt=attempt, reason=value.reason, detail=value.detail,
                                        wake_in=value.wake_in)
    elif kind == "in_doubt":
        attempt_outcome = "waiting"
        won = outcomes.step_record_wait(tx, ref, attempt=attempt, reason="in_doubt",
                                        detail={"key": value.key, "message": str(value)}, wake_in=None)
    elif kind == "cancelled":
        won = outcomes.step_record_cancelled(tx, ref, attempt=attempt)
    else:
        if kind == "lost":
            attempt_outcome = "lost"
        policy = RetryPolicy.from_config(node.retry, settings.WEFT_DEFAULT_RETRY)
        retry_in = retry_decision(policy, attempt=attempt, error_type=error_type)
        won = outcomes.step_record_failure(tx, ref, attempt=attempt, error=error, retry_in=retry_in)
        if won and retry_in is not None:
            observe.retry_scheduled(step)
    if not won:
        _fenced_out(step, attempt=attempt, logs=logs, error=error)
        return False
    if kind != "succeeded":
        ago = claim.ago()
        Attempt.objects.filter(step_id=step.pk, number=attempt).update(
            started_at=Now() - timedelta(seconds=ago["ago_start"]),
            finished_at=Now() - timedelta(seconds=ago["ago_end"]),
            outcome=attempt_outcome, error=error, error_type=error_type, traceback=tb, logs=logs,
            metrics=metrics or {},
        )
    return True


def _fenced_out(step: StepRun, *, attempt: int, logs: list[dict], error: str) -> None:
    now = StepRun.objects.filter(pk=step.pk).values_list("status", "attempt").first()
    log.warning("attempt %s of step %s was fenced out (now %s, attempt %s); result discarded",
                attempt, step.node_id, *(now or ("gone", None)))
    Attempt.objects.filter(step_id=step.pk, number=attempt, outcome=Attempt.Outcome.RUNNING).update(
        finished_at=Now(), logs=logs, error=f"result discarded (fenced out): {error}"[:20000],
    )
