"""Recording attempts' outcomes: each a compare-and-set on (running, attempt), so a fenced-out attempt's result
is discarded; successes in one statement where engine.core.hotpath can, else in one transaction of their run."""

from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings
from django.db.models.functions import Now

from engine.core import eventwaits, hotpath, outcomes
from engine.core.readiness import RetryPolicy, retry_decision
from engine.core.runtx import Continuation, RunTx, StepRef
from engine.models import Attempt, StepRun
from engine.observability import hooks as observe
from engine.states import RunStatus, StepStatus
from engine.worker.claim import Claim, claim_in_tx
from engine.worker.outcome import Cancelled, Failed, InDoubtWaiting, Succeeded, Waiting
from engine.worker.run import Ran

log = logging.getLogger(__name__)


def success_record_one(ran: Ran, *, worker: str, continuing: bool) -> list[Claim] | None:
    """One successful step in one statement (engine.core.hotpath): with the claim of its only successor for a
    ``continuing`` worker (returned), or with its run's success if it was the run's last step (nothing to
    claim). None when neither applies or the statement found the run moved on; the caller then records the
    outcome through ``batch_record``."""
    claim, outcome = ran.claim, ran.outcome
    step = claim.step
    if not isinstance(outcome, Succeeded) or claim.run_seq is None or claim.node.for_each is not None:
        return None  # (a mapped node's step is always one of its items: its parent counts it, in batch_record)
    if hotpath.finishes_run(claim.graph, step.node_id):
        finished = hotpath.finish_step_record(run_id=step.run_id, seq=claim.run_seq, step_id=step.pk,
                                              node_id=step.node_id, attempt=step.attempt, output=outcome.output,
                                              attempt_row=claim.attempt_row(ran.logs, outcome.metrics),
                                              sinks=claim.graph.sinks())
        return [] if finished is not None else None
    if not continuing:
        return None
    next_node = hotpath.chain_successor(claim.graph, step.node_id, queue=step.queue)
    if next_node is None:
        return None
    claimed = hotpath.chain_step_record(run_id=step.run_id, seq=claim.run_seq, step_id=step.pk,
                                        node_id=step.node_id, attempt=step.attempt, next_node_id=next_node,
                                        output=outcome.output, worker=worker,
                                        attempt_row=claim.attempt_row(ran.logs, outcome.metrics))
    if claimed is None:
        return None
    next_step, last_seq = claimed
    return [Claim(step=next_step, node=claim.graph.nodes[next_node], run_inputs=claim.run_inputs, graph=claim.graph,
                  run_seq=last_seq, relaxed=claim.relaxed)]


def batch_record(done: list[Ran], released: list[Claim], *, continuation: Continuation | None) -> list[Claim]:
    """Record a batch's outcomes in one transaction of their run, hand back what did not start, and claim
    the continuing worker's next steps."""
    with RunTx(done[0].claim.step.run_id, continuation=continuation, redoable=True) as tx:
        succeeded = [ran for ran in done if isinstance(ran.outcome, Succeeded)]
        if len(succeeded) > 1 and tx.run_status == RunStatus.RUNNING:  # one statement for all of them
            refs = [StepRef(r.claim.step.pk, r.claim.step.node_id, StepStatus.RUNNING, r.claim.step.attempt)
                    for r in succeeded]
            won = outcomes.steps_record_success(tx, [
                (ref, ref.attempt, ran.outcome.output, ran.claim.attempt_row(ran.logs, ran.outcome.metrics))
                for ref, ran in zip(refs, succeeded, strict=True)])
            for ran, ok in zip(succeeded, won, strict=True):
                if not ok:
                    attempt_fenced_out(ran.claim.step, attempt=ran.claim.step.attempt, logs=ran.logs, error="")
            done = [ran for ran in done if not isinstance(ran.outcome, Succeeded)]
        for ran in done:
            outcome_record(tx, ran)
        if released:
            tx.release([c.step for c in released])
        tx.continue_with_queued()
        claims = [claim_in_tx(tx, step) for step in continuation.claimed] if continuation else []
    for claim in claims:
        claim.run_seq = tx.run.last_seq
    return claims


def release_record(released: list[Claim]) -> None:
    """Hand back claimed steps of one run that never started (``running -> queued``, same attempt)."""
    with RunTx(released[0].step.run_id, redoable=True) as tx:
        tx.release([c.step for c in released])


def outcome_record(tx: RunTx, ran: Ran) -> bool:
    """Record the attempt's outcome in ``tx``; returns False if the attempt was fenced out."""
    claim, outcome = ran.claim, ran.outcome
    step, node, attempt = claim.step, claim.node, claim.step.attempt
    error, error_type, tb = outcome.error_text()
    # The status this attempt left the step in; every write below is a compare-and-set on it and the attempt.
    ref = StepRef(step.pk, step.node_id, StepStatus.RUNNING, attempt)
    if isinstance(outcome, Succeeded):  # the Attempt row is finished in the same statement
        won = outcomes.step_record_success(tx, ref, attempt=attempt, output=outcome.output,
                                           attempt_row=claim.attempt_row(ran.logs, outcome.metrics))
    elif isinstance(outcome, Waiting) and outcome.wait.reason == eventwaits.REASON:
        recorded = eventwaits.step_record_event_wait(tx, ref, attempt=attempt, detail=outcome.wait.detail,
                                                      wake_in=outcome.wait.wake_in)
        won = recorded is not None
        if recorded == "delivered":  # a stored event: the step succeeded at once
            outcome = Succeeded(output=None, metrics=outcome.metrics)
    elif isinstance(outcome, Waiting):
        wait = outcome.wait
        won = outcomes.step_record_wait(tx, ref, attempt=attempt, reason=wait.reason, detail=wait.detail,
                                        wake_in=wait.wake_in)
    elif isinstance(outcome, InDoubtWaiting):
        won = outcomes.step_record_wait(tx, ref, attempt=attempt, reason="in_doubt",
                                        detail={"key": outcome.error.key, "message": str(outcome.error)}, wake_in=None)
    elif isinstance(outcome, Cancelled):
        won = outcomes.step_record_cancelled(tx, ref, attempt=attempt)
    elif isinstance(outcome, Failed):
        policy = RetryPolicy.from_config(node.retry, settings.WEFT_DEFAULT_RETRY)
        retry_in = retry_decision(policy, attempt=outcomes.attempts_tried(step.pk, attempt), error_type=error_type)
        won = outcomes.step_record_failure(tx, ref, attempt=attempt, error=error, retry_in=retry_in)
        if won and retry_in is not None:
            observe.retry_scheduled(step)
    else:
        raise TypeError(f"not an attempt outcome: {outcome!r}")
    if not won:
        attempt_fenced_out(step, attempt=attempt, logs=ran.logs, error=error)
        return False
    if not isinstance(outcome, Succeeded) or outcome is not ran.outcome:
        ago = claim.ago()
        Attempt.objects.filter(step_id=step.pk, number=attempt).update(
            started_at=Now() - timedelta(seconds=ago["ago_start"]),
            finished_at=Now() - timedelta(seconds=ago["ago_end"]),
            outcome=outcome.attempt_outcome, error=error, error_type=error_type, traceback=tb, logs=ran.logs,
            metrics=outcome.metrics or {},
        )
    return True


def attempt_fenced_out(step: StepRun, *, attempt: int, logs: list[dict], error: str) -> None:
    """The attempt lost its step (recovery, an operator or a cancellation moved it on): keep its logs, drop its
    result."""
    now = StepRun.objects.filter(pk=step.pk).values_list("status", "attempt").first()
    log.warning("attempt %s of step %s was fenced out (now %s, attempt %s); result discarded",
                attempt, step.node_id, *(now or ("gone", None)))
    Attempt.objects.filter(step_id=step.pk, number=attempt, outcome=Attempt.Outcome.RUNNING).update(
        finished_at=Now(), logs=logs, error=f"result discarded (fenced out): {error}"[:20000],
    )
