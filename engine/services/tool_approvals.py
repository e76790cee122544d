"""An operator's decision on an agent's tool call waiting for approval (``engine.nodes.tool_approval``).

The decision is written to the step's journal, at the position the waiting attempt reserved for it, with who
made it; the step is queued again as a new attempt, which replays its journal and goes on from the decision.
"""

from __future__ import annotations

from django.db.models.functions import Now

from engine.core.runtx import RunTx
from engine.exceptions import InputsInvalid, InvalidTransition, NotFound
from engine.models import JournalEntry, StepRun
from engine.nodes.tool_approval import WAITING_REASON
from engine.states import RunStatus, StepStatus


def _actor_name(actor) -> str:
    if actor is None or isinstance(actor, str):
        return actor or ""
    return getattr(actor, "username", "") or str(actor)


def tool_call_decide(*, run_id, node_id: str, tool_call: str, approve: bool, arguments: dict | None = None,
                     comment: str = "", actor=None) -> StepRun:
    """Approve (with ``arguments``: edited, then approved) or reject the tool call ``tool_call`` the step waits on.

    A step not waiting on that call raises InvalidTransition (409), and nothing is written."""
    if arguments is not None and not isinstance(arguments, dict):
        raise InputsInvalid("arguments must be a JSON object (the tool call's arguments, as approved)")
    if arguments is not None and not approve:
        raise InputsInvalid("arguments are for approving with edits; a rejection sends only its comment")
    who = _actor_name(actor) or "an operator"
    with RunTx(run_id, actor=_actor_name(actor)) as tx:
        if node_id not in tx.graph.nodes:
            raise NotFound(f"run {run_id} has no step {node_id!r}")
        step = tx.step(node_id)
        detail = step.waiting_detail or {}
        waiting = detail.get("tool_call") or {}
        if step.status != StepStatus.WAITING or step.waiting_reason != WAITING_REASON or waiting.get("id") != tool_call:
            now = f"{step.status}" + (f" ({step.waiting_reason})" if step.waiting_reason else "")
            also = f"; it waits on tool call {waiting.get('id')!r}" if waiting.get("id") else ""
            raise InvalidTransition(f"tool call {tool_call!r} of step {node_id!r} is not waiting for approval "
                                    f"(the step is {now}{also})")
        if tx.run_status != RunStatus.RUNNING:
            raise InvalidTransition(f"run {run_id} is {tx.run_status}; no tool call of it can be decided")
        decided = arguments if arguments is not None else waiting.get("arguments") or {}
        result = {"decision": "approved" if approve else "rejected", "by": who, "comment": comment,
                  "tool_call": tool_call, "name": waiting.get("name"), "arguments": decided,
                  "edited": arguments is not None and arguments != waiting.get("arguments")}
        JournalEntry.objects.create(step_id=step.id, key=detail["key"], position=detail["position"],
                                    status=JournalEntry.Status.SUCCEEDED, safe_to_repeat=True, attempt=step.attempt,
                                    result=result, started_at=Now(), finished_at=Now())
        tx.event("step.tool_decision", node_id, tool_call=tool_call, name=waiting.get("name"),
                 decision=result["decision"], by=who, comment=comment, edited=result["edited"])
        tx.queue(step, next_attempt=step.attempt + 1, waiting_reason="", waiting_detail=None, wake_at=None)
    return StepRun.objects.get(pk=step.id)
