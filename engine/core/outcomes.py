"""What a step's outcome does to its run: readiness of its successors, and the outcomes workers record.

Readiness is incremental: each StepRun starts with ``remaining_upstream`` = its
in-degree. A step that reaches a terminal outcome decrements its successors'
counters in one statement (O(out-degree)); a successor that reaches zero has its
trigger rule evaluated and is queued, skipped or marked upstream_failed.
"""

from __future__ import annotations

import json

from django.db import connection
from django.db.models.functions import Now

from engine.core import transitions
from engine.core.inline import is_inline, run_inline
from engine.core.mapping import item_of, map_items_finished, map_start
from engine.core.readiness import (
    FAILED,
    RUN,
    SKIPPED,
    SUCCEEDED,
    chosen_branches,
    source_edge_outcome,
    trigger_decision,
)
from engine.core.runtx import STEP_CANNOT_WAIT, RunTx, StepRef
from engine.core.transitions import Bound
from engine.exceptions import TemplateFailed
from engine.models import Attempt
from engine.statements import load
from engine.states import RunStatus, StepStatus
from engine.templating import templates as templating

S = StepStatus


# -- readiness ----------------------------------------------------------------------------------


def _condition_failed(tx: RunTx, failure: dict) -> None:
    tx.event("edge.condition_failed", failure["node_id"], source=failure["source"], error=failure["error"])


def _edge_context(tx: RunTx, output) -> dict:
    return {"output": output, "inputs": tx.run.inputs}


def edge_outcome(tx: RunTx, edge, step_outcome: str, output, *, failures: list[dict] | None = None) -> str:
    """What a step's ``step_outcome`` (and ``output``) means for one of its out-edges. A condition that cannot be
    evaluated fails the edge, with an edge.condition_failed event: now, or with ``failures``, appended there for
    the caller to emit once the step's own compare-and-set has won."""
    outcome = source_edge_outcome(step_outcome)
    if outcome != SUCCEEDED:
        return outcome
    if edge.branch is not None:
        chosen = chosen_branches(output)
        if chosen is None or edge.branch not in chosen:
            return SKIPPED
    if edge.condition:
        try:
            taken = templating.evaluate(edge.condition, _edge_context(tx, output),
                                        path=f"edge {edge.source}->{edge.target}")
        except TemplateFailed as exc:
            failure = {"node_id": edge.target, "source": edge.source, "error": exc.message}
            if failures is None:
                _condition_failed(tx, failure)
            else:
                failures.append(failure)
            return FAILED
        if not taken:
            return SKIPPED
    return SUCCEEDED


_DECREMENT = Bound(load(__file__, "sql/runs.sql")["steps_decrement"])


def propagate(tx: RunTx, node_id: str, outcome: str, output=None) -> None:
    """A step reached a terminal ``outcome``: update its successors, and theirs if they are skipped or fail."""
    _propagate_all(tx, [(node_id, outcome, output)])


def dispatch_ready(tx: RunTx, ready: list[StepRef]) -> None:
    """Steps whose upstream is done and who should run: inline ones run now, the rest are queued."""
    _propagate_all(tx, _dispatch(tx, ready))


def _dispatch(tx: RunTx, ready: list[StepRef]) -> list[tuple]:
    queued, finished = [], []
    for ref in ready:
        node = tx.graph.nodes[ref.node_id]
        if node.for_each is not None:
            follow = map_start(tx, ref)
            if follow:
                finished.append(follow)
        elif is_inline(node.type):
            outcome, output = run_inline(tx, ref)
            if outcome:
                finished.append((ref.node_id, outcome, output))
        else:
            queued.append(ref)
    tx.queue_ready(queued)
    return finished


def _propagate_all(tx: RunTx, work: list[tuple]) -> None:
    while work:
        source, source_outcome, source_output = work.pop()
        if item_of(source) is not None:  # items of mapped nodes: their parents count them at once, may settle
            items = [source] + [w[0] for w in work if item_of(w[0]) is not None]
            work = [w for w in work if item_of(w[0]) is None] + map_items_finished(tx, items)
            continue
        params = _decrement_params(tx, source, source_outcome, source_output)
        if params is None:
            continue
        with connection.cursor() as cur:
            cur.execute(_DECREMENT.sql, _DECREMENT.params({
                "ok_ids": params[SUCCEEDED], "failed_ids": params[FAILED], "skipped_ids": params[SKIPPED],
                "all_ids": params["all"], "run": params["run"]}))
            rows = cur.fetchall()
        _decremented(tx, rows, work)


def _decrement_params(tx: RunTx, source: str, source_outcome: str, source_output, *,
                      failures: list[dict] | None = None) -> dict | None:
    """The node ids of steps_decrement (runs.sql) for ``source`` reaching ``source_outcome`` (None: it has no
    successors, or is an item of a mapped node). ``failures``: see edge_outcome."""
    edges = tx.graph.out_edges(source) if item_of(source) is None else None
    if not edges:
        return None
    by_outcome: dict[str, list[str]] = {SUCCEEDED: [], FAILED: [], SKIPPED: []}
    for edge in edges:
        by_outcome[edge_outcome(tx, edge, source_outcome, source_output, failures=failures)].append(edge.target)
    return {SUCCEEDED: by_outcome[SUCCEEDED], FAILED: by_outcome[FAILED], SKIPPED: by_outcome[SKIPPED],
            "all": [e.target for e in edges], "run": tx.run.pk}


def _decremented(tx: RunTx, rows: list[tuple], work: list[tuple]) -> None:
    """Act on the successors steps_decrement returned: those whose upstream is done run, skip or fail."""
    ready = []
    for step_id, target, status, attempt, remaining, ok, failed, skipped in rows:
        if remaining > 0:
            continue
        rule = tx.graph.nodes[target].trigger_rule
        decision = trigger_decision(rule, succeeded=ok, failed=failed, skipped=skipped)
        ref = StepRef(step_id, target, status, attempt)
        if decision == RUN and tx.run_status == RunStatus.RUNNING:
            ready.append(ref)
            continue
        follow = _ready(tx, ref, decision)
        if follow:
            work.append((target, follow, None))
    work.extend(_dispatch(tx, ready))


def _ready(tx: RunTx, step: StepRef, decision: str) -> str | None:
    """Act on a trigger decision for a step whose upstream is done. Returns an outcome to propagate, if any."""
    if tx.run_status != RunStatus.RUNNING:
        tx.step_set_status(step, S.CANCELLED)
        return None
    if decision == RUN:
        tx.queue(step, next_attempt=step.attempt + 1)
        return None
    status = S.SKIPPED if decision == SKIPPED else S.UPSTREAM_FAILED
    tx.step_set_status(step, status)
    return status


# -- outcomes recorded by the executor and recovery ---------------------------------------------


def step_record_success(tx: RunTx, step: StepRef, *, attempt: int, output, attempt_row: dict | None = None) -> bool:
    """running -> succeeded for ``attempt``, and its successors move on. With ``attempt_row`` (the
    attempt's logs and metrics), the Attempt row is finished too, in the same statement."""
    if attempt_row is not None and step.status == S.RUNNING and tx.run_status == RunStatus.RUNNING:
        return steps_record_success(tx, [(step, attempt, output, attempt_row)])[0]
    if not tx.step_set_status(step, S.SUCCEEDED, attempt=attempt, output=output, error="",
                              lease_expires_at=None, waiting_reason="", waiting_detail=None, wake_at=None):
        return False
    if attempt_row is not None:
        Attempt.objects.filter(step_id=step.id, number=attempt).update(
            started_at=_db_now_plus(-attempt_row.get("ago_start", 0.0)),
            finished_at=_db_now_plus(-attempt_row.get("ago_end", 0.0)), outcome="succeeded", error="",
            error_type="", traceback="", logs=attempt_row["logs"], metrics=attempt_row["metrics"])
    if tx.run_status == RunStatus.RUNNING:
        propagate(tx, step.node_id, SUCCEEDED, output)
    return True


def steps_record_success(tx: RunTx, items: list[tuple[StepRef, int, object, dict]]) -> list[bool]:
    """Record successful attempts [(running step, attempt, output, {"logs", "metrics"})] of one running run
    in one statement (transitions.steps_succeed); returns, per item, whether its compare-and-set won."""
    edges = []
    failures: dict[int, list[dict]] = {}  # by step: emitted only if its compare-and-set wins
    for step, _attempt, output, _row in items:
        decrement = _decrement_params(tx, step.node_id, SUCCEEDED, output, failures=failures.setdefault(step.id, []))
        for target_outcome, names in (decrement or {}).items():
            if target_outcome in (SUCCEEDED, FAILED, SKIPPED):
                edges += [{"source": step.node_id, "target": name, "outcome": target_outcome} for name in names]
    # The items and edges go as two JSON texts: one parameter each, not ten arrays to adapt element by element.
    rows = transitions.steps_succeed(run_id=tx.run.pk, edges=json.dumps(edges), items=json.dumps([
        {"id": step.id, "attempt": attempt, "output": output, "logs": row["logs"], "metrics": row["metrics"],
         "ago_start": float(row.get("ago_start", 0.0)), "ago_end": float(row.get("ago_end", 0.0))}
        for step, attempt, output, row in items]))
    won = {r[1] for r in rows if r[0] == "won"}
    for step, *_ in items:
        if step.id in won:
            tx.step_changed(step, S.SUCCEEDED)
            for failure in failures[step.id]:
                _condition_failed(tx, failure)
    work: list[tuple] = [(step.node_id, SUCCEEDED, output) for step, _, output, _ in items
                         if step.id in won and item_of(step.node_id) is not None]
    _decremented(tx, [r[1:] for r in rows if r[0] == "successor"], work)
    _propagate_all(tx, work)
    return [step.id in won for step, *_ in items]


def step_record_failure(tx: RunTx, step: StepRef, *, attempt: int, error: str, retry_in: float | None) -> bool:
    """Record a failed attempt: wait ``retry_in`` seconds and try again, or (None) fail the step."""
    if retry_in is not None and tx.run_status == RunStatus.RUNNING:
        if retry_in <= 0:
            return _requeue_now(tx, step, attempt=attempt, error=error)
        return tx.step_set_status(
            step,
            S.RETRY_WAIT,
            attempt=attempt,
            event={"attempt": attempt, "retry_in_s": round(retry_in, 3), "error": error[:500]},
            error=error,
            lease_expires_at=None,
            next_attempt_at=_db_now_plus(retry_in),
        )
    if not tx.step_set_status(step, S.FAILED, attempt=attempt, event={"attempt": attempt, "error": error[:500]},
                              error=error, lease_expires_at=None):
        return False
    if tx.run_status == RunStatus.RUNNING:
        propagate(tx, step.node_id, FAILED)
    return True


def _requeue_now(tx: RunTx, step: StepRef, *, attempt: int, error: str) -> bool:
    """running -> queued directly (no backoff), keeping the error, in one compare-and-set: the attempt number is
    the fencing token, so a fenced-out attempt changes nothing."""
    if step.status != S.RUNNING or step.attempt != attempt:
        return False
    return tx.queue(step, next_attempt=attempt + 1, error=error)


def _db_now_plus(seconds: float):
    from datetime import timedelta

    return Now() + timedelta(seconds=seconds)


def step_record_wait(tx: RunTx, step: StepRef, *, attempt: int, reason: str, detail: dict | None,
                     wake_in: float | None) -> bool:
    return tx.step_set_status(
        step,
        S.WAITING,
        attempt=attempt,
        event={"reason": reason, **({"detail": detail} if detail else {})},
        waiting_reason=reason,
        waiting_detail=detail,
        wake_at=_db_now_plus(wake_in) if wake_in is not None else None,
        lease_expires_at=None,
    )


def step_record_cancelled(tx: RunTx, step: StepRef, *, attempt: int) -> bool:
    return tx.step_set_status(step, S.CANCELLED, attempt=attempt, lease_expires_at=None)


def attempts_tried(step_id: int, attempt: int) -> int:
    """The attempt number a retry policy counts: ``attempt`` less the attempts that ended in a clean wait the step
    was resumed from (an agent's tool call approved or rejected), which failed nothing."""
    resumed = Attempt.objects.filter(step_id=step_id, number__lt=attempt, outcome=Attempt.Outcome.WAITING,
                                     error_type="").count()
    return attempt - resumed


STEP_CANNOT_WAIT.append(lambda tx, node_id: propagate(tx, node_id, FAILED))
