"""The worker's loop for one broker delivery: claim, run a batch, record it, and continue while it pays.

The transaction that records a success also claims this worker's next steps of the same run and queue
(through the same compare-and-set claim and a lease each, so a crash loses nothing): successors it made
ready, else steps of the run already queued there (a fan-out's siblings). Those steps have no broker row
and no claim transaction of their own, and the worker runs them at once instead of waiting a broker poll;
other ready successors get broker rows for other workers. While steps finish quickly the worker claims
more at a time (a batch, recorded in one transaction), up to WEFT_CONTINUE_BATCH; a slow step brings the
batch back to one, and claimed steps not started within WEFT_CONTINUE_WINDOW_S are handed back to the
queue. Bounded by WEFT_CONTINUE_MAX_S.
"""

from __future__ import annotations

import time

from django.conf import settings

from engine.core import registry
from engine.core.dbretry import with_db_retry
from engine.core.limits import attempt_start, limits_admit
from engine.core.runtx import Continuation
from engine.worker.claim import Claim, queue_claim_oldest, step_claim, worker_id
from engine.worker.outcome import Succeeded
from engine.worker.record import batch_record, release_record, success_record_one
from engine.worker.run import Ran, attempt_run

# A batch grows while its steps take less than this each (no-op and control steps, cheap transforms).
_FAST_STEP_S = 0.02


def delivery_execute(*, run_id, step_id: int, attempt: int) -> str:
    """Run attempt ``attempt`` of step ``step_id`` at most once, then what the loop claims after it. Returns the
    first attempt's outcome kind ("succeeded", "failed", ...), or "not claimed"."""
    started = time.monotonic()
    worker = worker_id()
    claim = step_claim(run_id=run_id, step_id=step_id, attempt=attempt, worker=worker)
    if claim is None:
        return "not claimed"
    result, batch, size = None, [claim], 1
    while batch:
        queue = batch[0].step.queue
        batch_started = time.monotonic()
        done, released = batch_run(batch, worker=worker)
        if not done:  # handed back before anything started: a limit paused since it was admitted, or no token
            with_db_retry(lambda: release_record(released), what="handing back a step")  # noqa: B023
            return result or "released"
        per_step = (time.monotonic() - batch_started) / len(done)
        size = min(size * 2, settings.WEFT_CONTINUE_BATCH) if per_step < _FAST_STEP_S and not released else 1
        keep_going = (not released and time.monotonic() - started <= _continue_budget(queue)
                      and all(isinstance(ran.outcome, Succeeded) for ran in done))
        continuation = Continuation(worker=worker, queue=queue, want=size) if keep_going else None
        what = f"recording step {done[0].claim.step.node_id!r}"
        batch = (with_db_retry(lambda: success_record_one(done[0], worker=worker,  # noqa: B023
                                                          continuing=continuation is not None),  # noqa: B023
                               what=what) if not released and len(done) == 1 else None)
        if batch is None:
            batch = with_db_retry(lambda: batch_record(done, released, continuation=continuation),  # noqa: B023
                                  what=what)
        result = done[0].outcome.kind if result is None else result
        if any(ran.claim.node.limits for ran in done) or any(c.node.limits for c in released):
            with_db_retry(limits_admit, what="admitting steps waiting for a limit")  # their slots are free
        if not batch and not released and time.monotonic() - started <= _continue_budget(queue):
            batch, size = queue_claim_oldest(queue=queue, worker=worker), 1
    return result


def _continue_budget(queue: str) -> float:
    timeout = settings.WEFT_QUEUES.get(queue, {}).get("timeout", 60)
    return min(settings.WEFT_CONTINUE_MAX_S, timeout / 4)


def batch_run(batch: list[Claim], *, worker: str) -> tuple[list[Ran], list[Claim]]:
    """Run claimed attempts one after another: returns what ran and the claims handed back unstarted because
    the batch ran longer than WEFT_CONTINUE_WINDOW_S, or because a limit the next one holds is paused or its
    rate has no token soon enough (a limited attempt takes its rates' tokens as it starts)."""
    started = time.monotonic()
    done = []
    for i, claim in enumerate(batch):
        if i and time.monotonic() - started > settings.WEFT_CONTINUE_WINDOW_S:
            return done, batch[i:]
        if claim.node.limits and not attempt_start(step_id=claim.step.pk, attempt=claim.step.attempt,
                                                   per_call=registry.get_node_type(claim.step.node_type).tokens_per_call):
            return done, batch[i:]
        held = [(c.step.pk, c.step.attempt) for c in batch[i + 1:]]
        claim.started = time.monotonic()
        ran = attempt_run(claim, worker=worker, held=held)
        claim.finished = time.monotonic()
        done.append(ran)
    return done, []
