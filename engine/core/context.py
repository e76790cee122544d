"""What a node sees while it runs: ``ctx``."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from engine.core.journal import Journal, idempotency_key
from engine.exceptions import LeaseLost, StepCancelled


def upstream_outputs(*, run_id, graph, node, also=None) -> tuple[dict, dict]:
    """What a step's templates can see of other steps: ({direct predecessor: output},
    {node id: {"output", "status"}} for its predecessors and every node its config (and ``also``, another
    template) refers to)."""
    from engine.models import StepRun
    from engine.templating import templates as templating

    direct = {e.source for e in graph.in_edges(node.id)}
    wanted = direct | templating.referenced_nodes(node.config)
    if also is not None:
        wanted |= templating.referenced_nodes(also)
    rows = StepRun.objects.filter(run_id=run_id, node_id__in=wanted).values_list("node_id", "status", "output")
    nodes_ctx = {nid: {"output": out, "status": status} for nid, status, out in rows}
    upstream = {nid: nodes_ctx[nid]["output"] for nid in direct if nid in nodes_ctx}
    return upstream, nodes_ctx


@dataclass
class Wait:
    """Returned by a node to park its step in ``waiting`` without holding a worker.

    ``wake_in`` (seconds) makes recovery wake it up (durable sleep, approval timeout).
    """

    reason: str
    detail: dict | None = None
    wake_in: float | None = None


class StepContext:
    def __init__(self, *, run_id, step_id: int, node_id: str, node_type: str, attempt: int, generation: int,
                 config: dict, run_inputs: dict, upstream: dict, worker: str, liveness, run_start=None,
                 run_budget: dict | None = None, relaxed: bool = False):
        self.run_id = run_id
        self.step_id = step_id
        self.node_id = node_id
        self.node_type = node_type
        self.attempt = attempt
        self.generation = generation
        self.config = config
        self.run_inputs = run_inputs
        self._upstream = upstream  # {node_id: output} of direct predecessors, or a function that reads them
        self.worker = worker
        self._liveness = liveness
        # Starts a run (engine.services.scheduler.run_start, given by the worker): a sub-workflow node's child.
        self.run_start = run_start
        self.run_budget = run_budget or {}  # the workflow definition's "budget": what the whole run may spend
        self.logger = logging.getLogger(f"weft.node.{node_type}")
        # relaxed: the run's durability (engine.core.durability) for the journal's entries of calls safe to repeat.
        self.journal = Journal(step_id=step_id, attempt=attempt, key_for=self.idempotency_key,
                               check_live=self.check_live, relaxed=relaxed)
        self.metrics: dict[str, Any] = {}

    @property
    def upstream(self) -> dict:
        """{node id: output} of the direct predecessors (read from the database when first asked for)."""
        if callable(self._upstream):
            self._upstream = self._upstream()
        return self._upstream

    @property
    def cancelled(self) -> bool:
        return self._liveness.cancelled

    def check_live(self) -> None:
        """Raise if the run was cancelled or this worker lost the step's lease."""
        if self._liveness.lost:
            raise LeaseLost(f"attempt {self.attempt} of step {self.node_id!r} lost its lease")
        if self._liveness.cancelled:
            raise StepCancelled(f"run {self.run_id} was cancelled")

    def idempotency_key(self, key: str) -> str:
        return idempotency_key(run_id=self.run_id, node_id=self.node_id, generation=self.generation, key=key)

    def step(self, key: str, fn: Callable[..., Any], *args, safe_to_repeat: bool | None = None, **kwargs) -> Any:
        """Run ``fn`` once per key per step run; later attempts get the recorded result.

        If ``fn`` takes an ``idempotency_key`` argument it receives ``ctx.idempotency_key(key)`` and is
        safe to repeat by default; otherwise a call cut off mid-way leaves the step in doubt unless
        ``safe_to_repeat=True``.
        """
        return self.journal.step(key, fn, *args, safe_to_repeat=safe_to_repeat, **kwargs)

    def text_stream(self, key: str):
        """Where a provider sends the text of the journaled call ``key`` as the model writes it
        (engine.core.streaming)."""
        from engine.core.streaming import TextStream

        return TextStream(run_id=self.run_id, node_id=self.node_id, attempt=self.attempt, key=key)

    def log(self, message: str, *args) -> None:
        self.logger.info(message, *args)
