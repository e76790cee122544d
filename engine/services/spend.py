"""What runs spent on model calls, read from their journals: every finished model call (an ``llm`` node's
``completion``, an ``agent``'s ``turn-N``) records its model and usage, priced with ``WEFT_LLM_PRICES``."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from engine.models import Run, StepRun, Workflow
from engine.nodes.budget import Spend, journaled_usage


def _summary(rows: list[tuple[str, dict]]) -> dict:
    total, by_model = Spend(), {}
    for model, usage in rows:
        total.add(model, usage)
        by_model.setdefault(model, Spend()).add(model, usage)
    return {**_figures(total), "by_model": [{"model": model, **_figures(s)} for model, s in sorted(by_model.items())]}


def _figures(spend: Spend) -> dict:
    return {"calls": spend.calls, "prompt_tokens": spend.prompt_tokens, "completion_tokens": spend.completion_tokens,
            "total_tokens": spend.tokens, "cost_usd": round(spend.cost_usd, 8)}


def run_spend(run: Run) -> dict:
    """The run's model calls: totals, by model, and its budget (the definition's ``budget``, or None)."""
    steps = StepRun.objects.filter(run=run).values("pk")
    return {**_summary(journaled_usage(step__any_of=steps)), "budget": run.version.definition.get("budget")}


def workflow_spend(workflow: Workflow, *, days: int = 30) -> dict:
    """The model calls of the workflow's runs created in the last ``days`` days: totals and by model."""
    since = timezone.now() - timedelta(days=days)
    runs = Run.objects.filter(workflow=workflow, created_at__gte=since).values("pk")
    return _summary(journaled_usage(step__any_of=StepRun.objects.filter(run__any_of=runs).values("pk")))
