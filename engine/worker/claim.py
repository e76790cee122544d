"""Claiming: ``queued -> running`` for exactly one delivery of (step, attempt), with a lease.

django-q2 may deliver the same message twice or late (docs/reliability.md, engine/core/broker.py); the claim
is a compare-and-set on (status=queued, attempt=n), so only one delivery runs a given attempt, and every
later write is fenced by the attempt number.
"""

from __future__ import annotations

import functools
import os
import socket
import time
from dataclasses import dataclass

from engine import statements
from engine.core import hotpath
from engine.core.dbretry import prepared_cursor, with_db_retry
from engine.core.limits import REASON as LIMIT_REASON
from engine.core.runtx import CLAIM_SQL, RunTx, StepRef, step_claim_sql
from engine.core.versions import version_graph
from engine.models import StepRun
from engine.states import Durability, RunStatus, StepStatus

SQL = statements.load(__file__, "sql/claim.sql")


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
    # The run is relaxed (engine.core.durability): the attempt's journal entries commit with synchronous_commit off.
    relaxed: bool = False

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
            statements.execute(cur, SQL["step_queued"], {"step": step_id, "queued": StepStatus.QUEUED,
                                                          "attempt": attempt})
            row = cur.fetchone()
        if row is None:
            return None  # someone else has it, or it moved on
        node_id, seq = row
        claim = _claim_one(run_id=run_id, step_id=step_id, attempt=attempt, worker=worker, node_id=node_id, seq=seq)
        if claim is not None:
            return claim
    with RunTx(run_id, redoable=True) as tx:  # the run moved on again, or stopped
        if tx.run_status != RunStatus.RUNNING:
            tx.step_set_status(StepRef(step_id, node_id, StepStatus.QUEUED, attempt), StepStatus.CANCELLED,
                               attempt=attempt)
            return None
        claimed = step_claim_sql(CLAIM_SQL, {"id": step_id, "attempt": attempt, "worker": worker})
        if not claimed:
            return None
        step = claimed[0]
        tx.claim_event(step)
        claim = claim_in_tx(tx, step)
    claim.run_seq = tx.run.last_seq
    return claim


def _claim_one(*, run_id, step_id: int, attempt: int, worker: str, node_id: str, seq: int) -> Claim | None:
    """The claim in one statement (engine.core.hotpath), if the run's last sequence number is still ``seq``."""
    one = hotpath.step_claim_one(run_id=run_id, seq=seq, step_id=step_id, node_id=node_id, attempt=attempt,
                                 worker=worker)
    if one is None:
        return None
    step, version_id, inputs, durability, last_seq = one
    graph = version_graph(version_id)
    return Claim(step=step, node=graph.node(node_id), run_inputs=inputs, graph=graph, run_seq=last_seq,
                 relaxed=durability == Durability.RELAXED)


def claim_in_tx(tx: RunTx, step: StepRun) -> Claim:
    """The Claim of ``step``, claimed in ``tx`` (its ``run_seq`` is known once ``tx`` commits)."""
    return Claim(step=step, node=tx.graph.node(step.node_id), run_inputs=tx.run.inputs, graph=tx.graph,
                 relaxed=tx.run.durability == Durability.RELAXED)


def queue_claim_oldest(*, queue: str, worker: str, tries: int = 4) -> list[Claim]:
    """The worker has nothing left of its run: claim the oldest queued step of another run on its queue, as
    that step's broker delivery would (same claim, same transaction), without waiting for the delivery.
    Its broker message goes in the claim; a copy already prefetched by a cluster finds the step claimed."""
    with prepared_cursor() as cur:
        statements.execute(cur, SQL["oldest_queued"], {"queue": queue, "limit": tries, "limit_reason": LIMIT_REASON})
        candidates = cur.fetchall()
    for run_id, step_id, attempt, node_id, seq in candidates:
        claim = with_db_retry(functools.partial(step_claim, run_id=run_id, step_id=step_id, attempt=attempt,
                                                worker=worker, node_id=node_id, seq=seq), what="claiming a queued step")
        if claim is not None:
            return [claim]
    return []
