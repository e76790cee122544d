"""The django-q2 task of every step delivery, and nothing else.

Every broker message names this function by its dotted path (engine.core.queues.EXECUTE_FUNC), and messages
already queued when Weft is upgraded keep the path they were written with: it stays here. The work is in
engine.worker.loop (claim, liveness, capture, run, record: one module each).
"""

from __future__ import annotations

from engine.worker.loop import delivery_execute


def execute_step(run_id: str, step_id: int, attempt: int) -> str:
    """Entry point of every broker message: run one attempt of one step, at most once (and what the worker
    claims after it; see engine.worker.loop)."""
    return delivery_execute(run_id=run_id, step_id=step_id, attempt=attempt)
