"""One transaction on one run: the run row lock, step compare-and-set, events, enqueues.

Every status change of the general path happens inside a ``RunTx``, made by
engine.core.transitions (the one-statement variants are engine.core.hotpath). It locks
the run row first (so transitions within a run are serialised and event sequence
numbers are gapless), buffers events and broker deliveries, and on exit writes
them, updates the run's counters and finishes the run when no step is left
unfinished -- all in the same transaction. If that fails, the transaction rolls back
and the error is raised.

A worker's own transaction (``redoable=True``: a claim, an attempt's outcome, a hand-back) on a relaxed run
commits with synchronous_commit off: the statement that locks the run row turns it off when the row says
relaxed (engine.core.durability), so it costs no round trip. Every other transaction, and any opened inside
a caller's transaction, commits as the server is configured.
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass, field

from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.models.functions import Now

from engine.core import transitions
from engine.core.dbretry import prepared_cursor
from engine.core.durability import COMMIT_RELAXED_IF_RUN, RELAXED_PARAMS
from engine.core.events import PendingEvent, events_write
from engine.core.queues import Delivery, enqueue, step_priority
from engine.core.versions import version_graph
from engine.exceptions import NotFound
from engine.models import Run, StepRun
from engine.observability.tracing import trace_tx
from engine.statements import Statement, StatementError, compose, execute, load
from engine.states import RUN_TERMINAL, STEP_FAILED, STEP_TERMINAL, RunStatus, StepStatus

# Called with a child run's id in the transaction that finishes it. engine.core.children adds the settling of
# the parent's waiting step (it builds on RunTx, so RunTx cannot import it); EngineConfig.ready imports it.
CHILD_RUN_FINISHED: list = []
# Called with the RunTx, after it wrote its run's row, when the transaction finished a run of a concurrency group
# (it ended succeeded, failed or cancelled): engine.core.concurrency adds the start of the group's waiting runs
# (it builds on RunTx). EngineConfig.ready imports it.
RUN_FINISHED: list = []
# Called with (tx, node_id) when a queued step failed because it could not wait for its limits (a key template
# failed, a limit is gone): engine.core.outcomes adds the telling of its successors (it builds on RunTx).
STEP_CANNOT_WAIT: list = []


@dataclass
class StepRef:
    id: int
    node_id: str
    status: str
    attempt: int


@dataclass
class Continuation:
    """A worker that will run up to ``want`` more steps of this run on ``queue`` once this transaction commits.

    ``RunTx`` claims them (``queued -> running`` with a lease, the same compare-and-set as a broker
    delivery's claim) in this transaction: steps it makes ready first, then steps of the run already
    queued there. They need no broker row and no claim transaction of their own; a crash after the
    commit leaves expiring leases.
    """

    worker: str
    queue: str
    want: int = 1
    claimed: list[StepRun] = field(default_factory=list)

    @property
    def room(self) -> int:
        return self.want - len(self.claimed)


# The claims as whole statements (engine.core.transitions), under the names the worker uses.
CLAIM_SQL = transitions.CLAIM
CLAIM_NEXT_SQL = transitions.CLAIM_NEXT
_RUNS_SQL = load(__file__, "sql/runs.sql")
_LOCK_RUN = compose(_RUNS_SQL["run_lock_row"], durability="")
_LOCK_RUN_REDOABLE = compose(_RUNS_SQL["run_lock_row"], durability=COMMIT_RELAXED_IF_RUN)
_FINISH_READ = transitions.Bound(_RUNS_SQL["run_finish_read"])
_STEPS_INSERT = transitions.Bound(_RUNS_SQL["steps_insert"])
_RUN_FIELDS = [f for f in Run._meta.concrete_fields]
if re.findall(r"\w+", re.match(r"SELECT\s(.*?)\sFROM", _LOCK_RUN.sql, re.S)[1]) != [f.column for f in _RUN_FIELDS]:
    raise StatementError("runs.sql 'run_lock_row' must select every column of engine.models.Run, in its order")


def step_claim_sql(statement: Statement, params: dict) -> list[StepRun]:
    """Run a claim statement (CLAIM_SQL, CLAIM_NEXT_SQL): see engine.core.transitions.steps_claim."""
    return transitions.steps_claim(statement, params)


def steps_insert(*, run_id, steps: list[dict]) -> list[tuple[int, str]]:
    """A new run's ``steps`` ({node_id, node_type, queue, upstream}), pending, in one statement. Returns their
    (id, node_id)."""
    with prepared_cursor() as cur:
        cur.execute(_STEPS_INSERT.sql, _STEPS_INSERT.params({"run": run_id, "steps": json.dumps(steps)}))
        return cur.fetchall()


def steps_recount(*, counts: list[tuple[int, int, int, int, int]]) -> None:
    """Set pending steps' readiness counters: (id, remaining, succeeded, failed, skipped) each."""
    ids, remaining, ok, failed, skipped = (list(column) for column in zip(*counts, strict=True))
    with connection.cursor() as cur:
        execute(cur, _RUNS_SQL["steps_recount"], {"ids": ids, "remaining": remaining, "n_ok": ok,
                                                  "n_failed": failed, "n_skipped": skipped})


def _lock_run(run_id, *, redoable: bool = False) -> Run:
    """The run row, locked for this transaction (what ``select_for_update(no_key=True).get()`` does,
    without compiling a query on every transition); with ``redoable``, a relaxed run's transaction commits with
    synchronous_commit off."""
    pk = run_id if isinstance(run_id, uuid.UUID) else uuid.UUID(str(run_id))
    with prepared_cursor() as cur:
        if redoable:
            execute(cur, _LOCK_RUN_REDOABLE, {"run": pk, **RELAXED_PARAMS})
        else:
            execute(cur, _LOCK_RUN, {"run": pk})
        row = cur.fetchone()
    if row is None:
        raise Run.DoesNotExist
    return _run_from_row(row)


def _run_from_row(row) -> Run:
    values = [f.from_db_value(v, None, connection) if hasattr(f, "from_db_value") else v
              for f, v in zip(_RUN_FIELDS, row, strict=True)]
    return Run.from_db("default", [f.attname for f in _RUN_FIELDS], values)


class RunTx:
    """``with RunTx(run_id, actor=...) as tx:`` -- see the module docstring."""

    def __init__(self, run_id, *, actor: str = "", continuation: Continuation | None = None,
                 new_run: Run | None = None, redoable: bool = False):
        """``new_run``: a run this transaction's caller inserted in its own (outer) transaction, so nobody
        else can see it yet: no lock to take, and no savepoint. ``redoable``: a worker's own transaction, which
        the worker would write again if a crash lost it; it commits as the run's durability says (a relaxed
        run's, with synchronous_commit off) unless it is opened inside a caller's transaction."""
        self.run_id = run_id
        self.redoable = redoable and new_run is None and not connection.in_atomic_block
        self.actor = actor
        self.continuation = continuation
        self.new_run = new_run
        if new_run is not None and not connection.in_atomic_block:
            raise RuntimeError("RunTx(new_run=...) runs inside the transaction that inserted the run")
        self._atomic = transaction.atomic(savepoint=new_run is None)

    def __enter__(self) -> RunTx:
        self._atomic.__enter__()
        try:
            self.run = self.new_run if self.new_run is not None else _lock_run(self.run_id, redoable=self.redoable)
        except (Run.DoesNotExist, ValueError, ValidationError):
            self._atomic.__exit__(NotFound, None, None)
            raise NotFound(f"run {self.run_id} does not exist") from None
        except BaseException as exc:
            self._atomic.__exit__(type(exc), exc, exc.__traceback__)
            raise
        self.graph = version_graph(self.run.version_id)
        self.entered_status = self.run.status
        self.events: list[PendingEvent] = []
        self.deliveries: list[Delivery] = []
        self.gated: list = []  # queued steps whose nodes take limits (engine.core.limits.Gated)
        self.unfinished_delta = 0
        self.run_changes: dict = {}
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            try:
                self._flush()
                if (self.run.concurrency_key is not None and self.entered_status not in RUN_TERMINAL
                        and self.run.status in RUN_TERMINAL):
                    for listener in RUN_FINISHED:
                        listener(self)
            except BaseException as flush_exc:
                # Atomic.__exit__ rolls back and returns None: the failure is the caller's to see, not a success.
                self._atomic.__exit__(type(flush_exc), flush_exc, flush_exc.__traceback__)
                raise
        return self._atomic.__exit__(exc_type, exc, tb)

    # -- events ---------------------------------------------------------------------------------

    def event(self, type: str, node_id: str = "", **payload) -> None:
        self.events.append(PendingEvent(type=type, node_id=node_id, payload=payload, actor=self.actor))

    # -- runs -----------------------------------------------------------------------------------

    @property
    def run_status(self) -> str:
        return self.run_changes.get("status", self.run.status)

    def run_set_status(self, to: str, **fields) -> None:
        self.run_changes.update(transitions.run_move(self.run_status, to, fields))
        self.event(f"run.{to}", **{k: v for k, v in fields.items() if k in ("error",)})

    # -- steps ----------------------------------------------------------------------------------

    def step(self, node_id: str) -> StepRun:
        qs = StepRun.objects.filter(run_id=self.run.pk, node_id=node_id)
        try:
            return qs.get()
        except StepRun.DoesNotExist:
            raise NotFound(f"run {self.run.pk} has no step {node_id!r}") from None

    def step_set_status(
        self,
        step: StepRef | StepRun,
        to: str,
        *,
        attempt: int | None = None,
        event: dict | None = None,
        **fields,
    ) -> bool:
        """Compare-and-set one step's status (engine.core.transitions.step_move). Returns whether this caller won.

        ``step.status`` is the status the caller saw; the UPDATE only applies if the row
        still has it (and, with ``attempt``, the same attempt number: the fencing token).
        """
        won = transitions.step_move(step, to, attempt=attempt, **fields)
        if won:
            self.step_changed(step, to, event=event)
        return won

    def step_changed(self, step: StepRef | StepRun, to: str, *, event: dict | None = None) -> None:
        """Account for a compare-and-set this caller won: the run's counter and the event."""
        self.unfinished_delta += int(step.status in STEP_TERMINAL) - int(to in STEP_TERMINAL)
        payload = {"from": step.status}
        if event:
            payload.update(event)
        self.event(f"step.{to}", step.node_id, **payload)
        transitions.step_moved(step, to)

    def queue(self, step: StepRef | StepRun, *, next_attempt: int, **fields) -> bool:
        """Move a step to ``queued`` with a new attempt number (and ``fields``, in the same compare-and-set); its
        broker row is written in this transaction."""
        won = transitions.step_requeue(step, next_attempt=next_attempt, **fields)
        if won:
            self.unfinished_delta += int(step.status in STEP_TERMINAL)
            self.event("step.queued", step.node_id, **{"from": step.status, "attempt": next_attempt})
            transitions.step_moved(step, StepStatus.QUEUED, attempt=next_attempt)
            self._deliver(step.id, step.node_id, next_attempt)
        return won

    def _deliver(self, step_id: int, node_id: str, attempt: int, *, msg_id: int | None = None) -> None:
        """A broker row for a queued step (with ``msg_id``, the id its step already holds), or, when its node
        takes limits, a wait for admission."""
        node = self.graph.node(node_id)
        if node.limits:
            from engine.core.limits import Gated

            self.gated.append(Gated(step_id, node_id, attempt))
            return
        self.deliveries.append(Delivery(str(self.run.pk), step_id, attempt, node.queue,
                                        step_priority(self.run.priority, node.priority), msg_id))

    def queue_ready(self, steps: list[StepRef]) -> None:
        """Queue pending steps whose upstream is done, in one statement (a fan-out queues all at once).

        With a continuation, the first of them on the continuing worker's queue are claimed for it in
        the same statement (``pending -> queued -> running``, both events written) and get no broker row.
        """
        if not steps:
            return
        cont = self.continuation
        claimed: set[int] = set()
        if cont is not None and cont.room > 0 and self.run_status == RunStatus.RUNNING:
            claimed = set([s.id for s in sorted(steps, key=lambda s: s.id)
                           if self.graph.node(s.node_id).queue == cont.queue
                           and not self.graph.node(s.node_id).limits][:cont.room])
        # Each step's kind (transitions.steps_queue_ready): claimed for the continuing worker, waiting for a limit's
        # admission (as _deliver decides), or delivered through a broker row.
        kinds = ["claim" if s.id in claimed else "gate" if self.graph.node(s.node_id).limits else "deliver"
                 for s in steps]
        rows = transitions.steps_queue_ready(ids=[s.id for s in steps], kinds=kinds,
                                             worker=cont.worker if cont else "")
        for *row, status, msg_id in sorted(rows):
            step_id, _, node_id, _, _, attempt, *_ = row  # the claim's columns (see claimed_step), status, message
            self.event("step.queued", node_id, **{"from": StepStatus.PENDING, "attempt": attempt})
            if status == StepStatus.RUNNING:
                self._claimed(cont, transitions.claimed_step(tuple(row), worker=cont.worker))
                continue
            self._deliver(step_id, node_id, attempt, msg_id=msg_id)

    def _claimed(self, cont: Continuation, step: StepRun) -> None:
        cont.claimed.append(step)
        self.claim_event(step)

    def claim_event(self, step: StepRun) -> None:
        self.event("step.running", step.node_id, **{"from": StepStatus.QUEUED, "attempt": step.attempt,
                                                    "worker": step.worker})

    def release(self, steps: list[StepRun]) -> None:
        """Hand claimed steps that never started back to their queue (``running -> queued``, same attempt:
        it never ran, so the fencing token stays), with broker rows for other workers."""
        for step_id, node_id, attempt, _ in sorted(transitions.steps_release(steps=steps)):
            self.event("step.queued", node_id, **{"from": StepStatus.RUNNING, "attempt": attempt, "released": True})
            self._deliver(step_id, node_id, attempt)  # a step that takes limits waits for admission again

    def continue_with_queued(self) -> None:
        """The continuing worker has room left: give it the oldest steps of this run already queued on its
        queue (the siblings of a fan-out), instead of one broker delivery each."""
        cont = self.continuation
        if cont is None or cont.claimed or self.run_status != RunStatus.RUNNING or self.graph.limited:
            return  # what this transaction made ready comes first (a chain looks for no siblings); a step
            # waiting for a limit is not for the taking
        for step in step_claim_sql(CLAIM_NEXT_SQL, {"run": self.run.pk, "queue": cont.queue, "worker": cont.worker,
                                                    "n": cont.room}):
            self._claimed(cont, step)

    # -- flush ----------------------------------------------------------------------------------

    def _flush(self) -> None:
        while self.gated:
            self._limits_wait()
        if self.deliveries:
            enqueue(self.deliveries)
        unfinished = self.run.unfinished_steps + self.unfinished_delta
        if unfinished == 0 and self.run_status == RunStatus.RUNNING:
            self._finish_run()
        if not (self.events or self.unfinished_delta or self.run_changes):
            return
        trace_tx(self)  # spans of the steps and run this transaction finished, exported after commit
        first_seq = self.run.last_seq + 1
        last_seq = self.run.last_seq + len(self.events)
        plain = all(isinstance(v, Now) or not hasattr(v, "resolve_expression") for v in self.run_changes.values())
        if self.events and plain:  # one statement: events, the run row (returned, so self.run is current), publication
            for f, value in events_write(self.run.pk, first_seq, self.events, run_counters=(last_seq, unfinished),
                                         run_changes=self.run_changes):
                setattr(self.run, f.attname, f.from_db_value(value, None, connection)
                        if hasattr(f, "from_db_value") else value)
            return
        if self.events:
            events_write(self.run.pk, first_seq, self.events)
        Run.objects.filter(pk=self.run.pk).update(last_seq=last_seq, unfinished_steps=unfinished,
                                                  **self.run_changes)
        self.run.last_seq = last_seq
        self.run.unfinished_steps = unfinished
        for key, value in self.run_changes.items():
            if not hasattr(value, "resolve_expression"):
                setattr(self.run, key, value)

    def _limits_wait(self) -> None:
        """The queued steps whose nodes take limits wait for admission (engine.core.limits); one that cannot
        (its key's template failed, its limit is gone) fails with the reason, which may queue more."""
        from engine.core.limits import steps_wait

        gated, self.gated = self.gated, []
        failed, waits = steps_wait(self, gated)
        by_node = {g.node_id: waits[g.step_id] for g in gated if g.step_id in waits}
        for event in self.events:  # the step.queued event says which limits it waits for (the step drawer)
            if event.type == "step.queued" and event.node_id in by_node:
                event.payload["limits"] = by_node[event.node_id]
        for g, reason in failed:
            ref = StepRef(g.step_id, g.node_id, StepStatus.QUEUED, g.attempt)
            if self.step_set_status(ref, StepStatus.FAILED, attempt=g.attempt, error=reason,
                                    event={"attempt": g.attempt, "error": reason[:500]}):
                for listener in STEP_CANNOT_WAIT:
                    listener(self, g.node_id)

    def _finish_run(self) -> None:
        if self.run.parent_step_id:  # a child run: its parent's waiting step settles after this commits
            for listener in CHILD_RUN_FINISHED:
                listener(self.run.pk)
        with prepared_cursor() as cur:
            cur.execute(_FINISH_READ.sql, _FINISH_READ.params({"run": self.run.pk, "sinks": self.graph.sinks(),
                                                               "broken": _BROKEN}))
            rows = cur.fetchall()
        broken = [(node_id, status) for node_id, status, _ in rows if status != StepStatus.SUCCEEDED]
        if broken:
            self.run_set_status(RunStatus.FAILED, finished_at=Now(), error=_failure_summary(broken))
            return
        outputs = {node_id: json.loads(output) if output is not None else None for node_id, _, output in rows}
        self.run_set_status(RunStatus.SUCCEEDED, finished_at=Now(), outputs=outputs, error="")


# The statuses of steps that make their run fail, 'failed' first (run_finish_read orders by status, so that the
# cause is named before what it blocked).
_BROKEN = sorted(STEP_FAILED)


def _failure_summary(broken: list[tuple[str, str]]) -> str:
    """``step(s) failed: b; blocked by a failure (upstream failed): c, d`` -- the steps that failed named
    apart from those that never ran because of them."""
    failed = [node_id for node_id, status in broken if status == StepStatus.FAILED]
    blocked = [node_id for node_id, status in broken if status == StepStatus.UPSTREAM_FAILED]
    parts = [f"step(s) failed: {', '.join(failed)}"] if failed else []
    if blocked:
        parts.append(f"blocked by a failure (upstream failed): {', '.join(blocked)}")
    return "; ".join(parts)
