"""What runs spent on model calls, read from their journals: every finished model call (an ``llm`` node's
``completion``, an ``agent``'s ``turn-N``) records its model and usage, priced with ``WEFT_LLM_PRICES``."""

from __future__ import annotations

from engine.models import Run, StepRun
from engine.nodes.budget import Spend, journaled_usage


def calls_summary(calls) -> dict:
    """Totals and by model of ``calls``: (model, prompt tokens, completion tokens, how many such calls)."""
    by_model: dict[str, Spend] = {}
    for model, prompt, completion, n in calls:
        by_model.setdefault(model, Spend()).count(model, prompt, completion, n)
    return models_summary(by_model)


def models_summary(by_model: dict[str, Spend]) -> dict:
    """Totals and by model of each model's calls, tokens and cost."""
    total = Spend()
    for spend in by_model.values():
        total.merge(spend)
    return {**_figures(total), "by_model": [{"model": model, **_figures(s)} for model, s in sorted(by_model.items())]}


def _figures(spend: Spend) -> dict:
    return {"calls": spend.calls, "prompt_tokens": spend.prompt_tokens, "completion_tokens": spend.completion_tokens,
            "total_tokens": spend.tokens, "cost_usd": round(spend.cost_usd, 8)}


def run_spend(run: Run) -> dict:
    """The run's model calls: totals, by model, and its budget (the definition's ``budget``, or None)."""
    steps = StepRun.objects.filter(run=run).values("pk")
    calls = [(model, int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0), 1)
             for model, usage in journaled_usage(step__any_of=steps)]
    return {**calls_summary(calls), "budget": run.version.definition.get("budget")}
