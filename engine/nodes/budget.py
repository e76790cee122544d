"""Budgets for model calls: a node's ``budget`` and a workflow's ``budget`` (``{"max_cost_usd", "max_tokens"}``).

Checked before each model call that is really made (a replayed turn is not checked again), from the usage
journaled so far: the step's own journal for the node's budget, every step's journal of the run for the run's.
The next call is estimated as

- prompt tokens: the larger of (the characters of its messages and tool definitions) / 4 and the prompt tokens
  of the step's last journaled turn;
- completion tokens: the node's ``max_tokens`` (its per-call output limit) when set, else the most any journaled
  turn of the step produced;

and priced with the model's prices (``WEFT_LLM_PRICES``; a model without a price counts tokens only). When what
was spent plus that estimate would pass a limit, the call is not made: ``BudgetExceeded``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from engine.integrations.llm_providers import estimate_cost
from engine.models import JournalEntry, StepRun

BUDGET_SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "description": "the most this step may spend on model calls (checked before each call)",
    "properties": {"max_cost_usd": {"type": "number", "exclusiveMinimum": 0},
                   "max_tokens": {"type": "integer", "minimum": 1}},
}
ON_BUDGET_SCHEMA = {"enum": ["fail", "return"], "default": "fail",
                    "description": "when the next model call could pass a budget: fail the step (BudgetExceeded), "
                                   "or output what there is"}


class BudgetExceeded(Exception):
    """The next model call could spend past the node's or the run's budget; it was not made."""


@dataclass
class Spend:
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    calls: int = 0

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def add(self, model: str, usage: dict) -> None:
        self.count(model or "", int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0))

    def count(self, model: str, prompt: int, completion: int, calls: int = 1) -> None:
        """``calls`` calls of ``model``, each with these token counts, priced with WEFT_LLM_PRICES."""
        self.prompt_tokens += prompt * calls
        self.completion_tokens += completion * calls
        self.cost_usd += (estimate_cost(model, prompt, completion) or 0.0) * calls
        self.calls += calls

    def merge(self, other: Spend) -> None:
        self.prompt_tokens += other.prompt_tokens
        self.completion_tokens += other.completion_tokens
        self.cost_usd += other.cost_usd
        self.calls += other.calls


def journaled_usage(**filters) -> list[tuple[str, dict]]:
    """(model, usage) of every finished model call in the journal entries matching ``filters``, oldest first."""
    rows = (JournalEntry.objects.filter(status=JournalEntry.Status.SUCCEEDED, result__has_key="usage", **filters)
            .order_by("step_id", "position").values_list("result__model", "result__usage"))
    return [(model or "", usage) for model, usage in rows if isinstance(usage, dict)]


def spend_of(rows: list[tuple[str, dict]]) -> Spend:
    spend = Spend()
    for model, usage in rows:
        spend.add(model, usage)
    return spend


def check(ctx, *, node_budget: dict | None, model: str, messages: list[dict], tools: list[dict] | None,
          max_output: int | None) -> None:
    """Raise BudgetExceeded when the next call could pass the node's or the run's budget."""
    run_budget = getattr(ctx, "run_budget", None) or {}
    node_budget = node_budget or {}
    if not (run_budget or node_budget):
        return
    mine = journaled_usage(step_id=ctx.step_id)
    run_steps = StepRun.objects.filter(run_id=ctx.run_id).values("pk")
    prompt = len(json.dumps(messages, default=str)) // 4 + (len(json.dumps(tools)) // 4 if tools else 0)
    if mine:
        prompt = max(prompt, int(mine[-1][1].get("prompt_tokens") or 0))
    completion = max_output or max((int(u.get("completion_tokens") or 0) for _, u in mine), default=0)
    next_cost = estimate_cost(model, prompt, completion) or 0.0
    for scope, limits, spent in (("node", node_budget, spend_of(mine) if node_budget else None),
                                 ("run", run_budget, spend_of(journaled_usage(step__any_of=run_steps))
                                  if run_budget else None)):
        if spent is None:
            continue
        if limits.get("max_tokens") is not None and spent.tokens + prompt + completion > limits["max_tokens"]:
            ctx.metrics["budget_stopped"] = scope
            raise BudgetExceeded(
                f"the {scope}'s budget of {limits['max_tokens']} tokens: {spent.tokens} spent, and the next model "
                f"call could use about {prompt + completion} ({prompt} prompt + {completion} completion)")
        if limits.get("max_cost_usd") is not None and spent.cost_usd + next_cost > limits["max_cost_usd"]:
            ctx.metrics["budget_stopped"] = scope
            raise BudgetExceeded(
                f"the {scope}'s budget of ${limits['max_cost_usd']:g}: ${spent.cost_usd:.6f} spent, and the next "
                f"model call could cost about ${next_cost:.6f}")
