"""``bench ui``'s measuring code on a small run (docs/benchmarks.md "The run view in the browser"): every figure
comes back from a real browser and server. No timing is asserted; the benchmark reports them."""

from __future__ import annotations

import pytest

from engine.models import Run, StepRun
from engine.operations.uibench import summary, ui_measure
from engine.operations.uibench_run import chains_definition, completion_order

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_bench_run_draws_every_step_and_completing_it_readies_nothing():
    definition = chains_definition(50)
    assert len(definition["nodes"]) == 50
    order = completion_order(50)
    # Deepest first: each step comes before the step above it in its chain.
    assert order.index("c00-01") < order.index("c00-00")
    assert sorted(order) == sorted(n["id"] for n in definition["nodes"][1:])


def test_bench_ui_reports_first_draws_and_live_rates_measured_in_the_browser(live_url, browser):
    samples = ui_measure(repetitions=1, steps=50, rate=20, seconds=1, base_url=live_url, browser=browser)

    (sample,) = samples
    # 20 steps completed while the graph was open, each one event the browser drew.
    assert sample["events"] == 20
    assert sample["transactions"] >= 1
    assert sample["frames"] >= 1
    for key in ("sent_per_s", "applied_per_s", "lag_p50_ms", "lag_p95_ms", "graph_first_draw_ms",
                "timeline_first_draw_ms", "browser_per_s", "browser_lag_p95_ms", "browser_10x_per_s"):
        assert sample[key] is not None and sample[key] > 0, key
    assert sample["lag_p50_ms"] <= sample["lag_p95_ms"] <= sample["lag_max_ms"]
    report = summary(samples)
    assert report["graph_first_draw_ms"]["min"] <= report["graph_first_draw_ms"]["median"]
    # The run was cancelled afterwards, with the 20 steps the senders completed.
    run = Run.objects.get(workflow__slug="bench-ui-50")
    assert run.status == "cancelled"
    assert StepRun.objects.filter(run=run, status="succeeded").count() == 20
