"""A workflow's analytics from kept days (engine/services/analytics.py) are what one pass over the period gives,
and stop being used the moment one of their runs changes or goes."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

import pytest
from django.db.models import Count
from django.utils import timezone

from engine.models import AnalyticsDay, Run, StepRun, Workflow
from engine.operations.seed import history_seed
from engine.services.analytics import workflow_analytics
from engine.services.retention import prune
from engine.services.scheduler import run_retry_failed, step_complete

pytestmark = pytest.mark.django_db(transaction=True)


def test_kept_days_give_what_one_pass_gives_until_their_runs_change(settings):
    history_seed(runs=900, wide_runs=0, oldest=timedelta(days=40), newest=timedelta(hours=1))
    workflow = Workflow.objects.annotate(n=Count("runs")).order_by("-n").first()
    now = timezone.now()

    def analytics():
        return workflow_analytics(workflow, days=30, now=now)

    def one_pass():
        return workflow_analytics(workflow, days=30, now=now, kept_days=False)

    # Finished runs at the period's edges, whatever the time of day: created today, and on the period's first day
    # just before and just after its start (the figures read the unkept days' runs day by day).
    since = now - timedelta(days=30)
    edges = list(Run.objects.filter(workflow=workflow, status="failed").order_by("created_at")[:6])
    for run, created in zip(edges, [now - timedelta(minutes=5)] * 2 + [since - timedelta(minutes=1)] * 2
                            + [since + timedelta(minutes=1)] * 2, strict=True):
        Run.objects.filter(pk=run.pk).update(created_at=created)
    expected = one_pass()
    assert expected["runs_total"] == Run.objects.filter(workflow=workflow, created_at__gte=since).count()
    assert expected["failing_nodes"] and expected["spend"]["calls"]  # the seed's failures and model calls are there
    assert not AnalyticsDay.objects.exists()
    assert analytics() == expected  # computed per day, and the finished days kept
    kept = AnalyticsDay.objects.filter(workflow=workflow)
    today, first = now.date(), (now - timedelta(days=30)).date()
    assert 25 <= kept.count() <= 29
    assert all(first < day.day < today for day in kept)  # never the period's first (partial) day, nor today

    def tamper(day: AnalyticsDay) -> None:
        day.figures["nodes"]["tampered"] = [10**6, 10**6, 10**6, {"Tampered": 10**6}]
        day.save()

    # Kept days are read, not recomputed: a kept day's figures changed by hand show through.
    failed = Run.objects.filter(workflow=workflow, status="failed",
                                created_at__date__in=kept.values_list("day", flat=True)).order_by("created_at")[0]
    day = kept.get(day=failed.created_at.date())
    tamper(day)
    assert analytics()["failing_nodes"][0] == {"node_id": "tampered", "attempts": 10**6, "failed_attempts": 10**6,
                                               "failed_steps": 10**6, "top_error_type": "Tampered"}

    # A run of that day retried (new events): the day is not used while the run is unfinished, nor kept again;
    # once the run has finished again (as many runs, a higher sum of last events) it is computed and kept again.
    run_retry_failed(run_id=failed.pk, actor="test")
    assert analytics() == one_pass()
    assert "tampered" in kept.get(day=day.day).figures["nodes"]
    while (step := StepRun.objects.filter(run=failed, status="queued").first()) is not None:
        step_complete(run_id=failed.pk, node_id=step.node_id, output={}, actor="test")
    assert Run.objects.get(pk=failed.pk).status == "succeeded"
    assert analytics() == one_pass()
    assert "tampered" not in kept.get(day=day.day).figures["nodes"]

    # Runs of a kept day pruned: what was kept of their days goes with them; the rest of that day is computed
    # and kept again. The day has runs finished before its noon (pruned) and runs started after it (kept).
    def split_at_noon(kept_day: AnalyticsDay) -> bool:
        noon = datetime.combine(kept_day.day, time(12), UTC)
        runs = Run.objects.filter(workflow=workflow, created_at__date=kept_day.day)
        return runs.filter(finished_at__lt=noon).exists() and runs.filter(created_at__gte=noon).exists()

    day = next(d for d in kept.exclude(day=day.day).order_by("day") if split_at_noon(d))
    tamper(day)
    noon = datetime.combine(day.day, time(12), UTC)
    assert prune(older_than=now - noon).runs > 0
    assert not kept.filter(day__lte=day.day).exists()  # the prune deleted what was kept of its runs' days
    assert analytics() == one_pass()
    assert "tampered" not in kept.get(day=day.day).figures["nodes"]

    # New prices: every kept day's cost is priced again.
    before = analytics()["spend"]["cost_usd"]
    settings.WEFT_LLM_PRICES = {"gpt-4o-mini": {"input": 1.5, "output": 6.0}}  # ten times the default
    assert analytics() == one_pass()
    assert analytics()["spend"]["cost_usd"] == pytest.approx(before * 10, rel=1e-6)
