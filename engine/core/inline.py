"""Inline nodes (transform, branch): run inside the run's transaction (RunTx) that made them ready, no queue round trip.

An inline node is cheap, pure and deterministic (it reads its inputs and returns a value), so
running it in the transaction that made it ready is safe: if the transaction rolls back, so does
its result. A step of an inline type that is retried or rerun by an operator goes through a queue
like any other step.
"""

from __future__ import annotations

import time
import traceback

from engine.core import registry, transitions
from engine.core.context import upstream_outputs
from engine.core.security import output_check, storable_text
from engine.exceptions import NodeTypeNotFound
from engine.observability import hooks as observe
from engine.states import StepStatus
from engine.templating import templates as templating

INLINE_WORKER = "inline"


class InlineContext:
    """The part of ``ctx`` an inline node may use: its inputs. No journal, no waiting."""

    def __init__(self, *, run_id, node_id: str, config: dict, run_inputs: dict, upstream: dict):
        self.run_id, self.node_id, self.config = run_id, node_id, config
        self.run_inputs, self.upstream = run_inputs, upstream
        self.attempt, self.metrics, self.cancelled = 1, {}, False

    def step(self, *args, **kwargs):
        raise TypeError("inline nodes cannot make journaled calls (ctx.step); give the node a queue instead")

    def check_live(self) -> None:
        return None


def is_inline(node_type: str) -> bool:
    """Whether steps of ``node_type`` run inline. An unknown type (removed from the code since its workflow was
    saved) is not: its step goes to a queue, where the worker fails it with NodeTypeNotFound, a clear error on
    the step that an operator sees. Any other error propagates."""
    try:
        return registry.get_node_type(node_type).inline
    except NodeTypeNotFound:
        return False


def run_inline(tx, step) -> tuple[str, object]:
    """Run a ready inline step (status pending) in ``tx``. Returns (outcome, output) to propagate."""
    node = tx.graph.nodes[step.node_id]
    upstream, nodes_ctx = upstream_outputs(run_id=tx.run.pk, graph=tx.graph, node=node)
    error = tb = ""
    output = None
    started = time.monotonic()
    try:
        config = templating.render(node.config, {"inputs": tx.run.inputs, "nodes": nodes_ctx, "upstream": upstream,
                                                 "run": {"id": str(tx.run.pk)}}, path=f"nodes.{node.id}.config")
        ctx = InlineContext(run_id=tx.run.pk, node_id=node.id, config=config, run_inputs=tx.run.inputs,
                            upstream=upstream)
        output = registry.get_node_type(node.type).cls().run(ctx, dict(config))
        output_check(output)
    except Exception as exc:
        error = storable_text(f"{type(exc).__name__}: {getattr(exc, 'message', None) or exc}"[:20000])
        tb = storable_text("".join(traceback.format_exception(exc))[-50000:])
        output = None
    status = transitions.step_inline_finish(step, error=error, output=output, traceback=tb, worker=INLINE_WORKER)
    if not status:
        return "", None
    attempt = step.attempt + 1
    duration_s = time.monotonic() - started
    observe.inline_step_ran(queue=node.queue, node_type=node.type, outcome="failed" if error else "succeeded",
                            duration_s=duration_s)
    tx.unfinished_delta -= 1
    payload = {"from": StepStatus.PENDING, "attempt": attempt, "inline": True,
               "duration_ms": round(duration_s * 1000, 3)}
    if error:
        payload["error"] = error[:500]
    tx.event(f"step.{status}", step.node_id, **payload)
    transitions.step_moved(step, status, attempt=attempt)
    return status, output
