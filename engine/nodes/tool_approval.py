"""Approval before a tool call: a tool with ``requires_approval`` (true, or a template deciding it from the call's
``arguments``) is called only once an operator has approved that call.

The decision is journal entry ``approval-N-<name>`` just before the call's own entry ``tool-N-<name>``. The
first time the agent reaches the call there is none: the step waits (reason ``tool_approval``, holding no
worker) with the call in ``waiting_detail``. ``engine.services.tool_approvals`` writes the decision (who, when,
the arguments approved, the comment) at the position the step reserved and queues the step again; the next
attempt replays the journal up to that entry and goes on. A decided call is never asked about again, whatever
retries or restarts follow.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from engine.core.context import Wait
from engine.templating import templates as templating

WAITING_REASON = "tool_approval"
# The config paths the worker leaves unrendered: the agent renders them per call, with the call's arguments.
LATE_TEMPLATES = re.compile(r"\.(tools|mcp_servers)\[\d+\]\.requires_approval$")


class AwaitingApproval(Exception):
    """Raised inside the agent's loop when a call needs a decision nobody has made yet; ``wait`` parks the step."""

    def __init__(self, wait: Wait):
        super().__init__(wait.detail["message"])
        self.wait = wait


@dataclass
class Decision:
    approved: bool
    arguments: dict
    result: dict | None = None  # what the model is told instead of the tool's result, when rejected


def needs_approval(rule, arguments: dict, *, tool: str) -> bool:
    """Whether this call waits for an operator: ``rule`` is true/false, or a template over ``arguments``."""
    if rule is None or isinstance(rule, bool):
        return bool(rule)
    if templating.is_template(rule):
        return bool(templating.render(rule, {"arguments": arguments}, path=f"tool {tool}.requires_approval"))
    return str(rule).strip().lower() not in ("", "false", "0", "no")


def gate(ctx, *, number: int, name: str, call_id: str, arguments: dict, turn: int) -> Decision:
    """The operator's decision on this call, or AwaitingApproval while there is none."""
    key = f"approval-{number}-{name[:64]}"
    position, recorded = ctx.journal.decision(key)
    if recorded is None:
        call = {"id": call_id, "name": name, "arguments": arguments}
        raise AwaitingApproval(Wait(WAITING_REASON, detail={
            "message": f"Approve the call of tool {name!r}?", "tool_call": call, "key": key, "position": position,
            "turn": turn}))
    if recorded.get("decision") == "approved":
        return Decision(True, recorded.get("arguments") if isinstance(recorded.get("arguments"), dict) else arguments)
    by = recorded.get("by") or "an operator"
    message = recorded.get("comment") or ""
    return Decision(False, arguments, {
        "rejected": True, "by": by,
        "message": f"The operator ({by}) rejected this call" + (f": {message}" if message else "."),
    })
