"""The run view's browser benchmark (docs/benchmarks.md): a 1,000-step run first drawn, and live events
applied at 100 a second, measured in Chromium. Figures are printed, never asserted as timings."""

from __future__ import annotations

import statistics
import time

import pytest
from playwright.sync_api import expect

from engine.models import StepRun
from engine.services.scheduler import run_start, step_complete
from engine.services.workflows import workflow_save
from tests.conftest import definition, node

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

STEPS = 1000
RATE = 100  # events a second
SECONDS = 5


def test_run_view_of_a_1000_step_run_first_draw_and_live_event_rate(ui):
    # A root, then 999 steps under it: all pending while the root waits (no workers run).
    nodes = [node("root")] + [node(f"s{i:04d}") for i in range(1, STEPS)]
    edges = [("root", f"s{i:04d}") for i in range(1, STEPS)]
    run, _ = run_start(workflow=workflow_save(definition=definition("bench-ui", nodes, edges))[0], inputs={})
    draws = []
    for _ in range(3):
        ui.goto(f"{ui.base}/runs/{run.pk}/?tab=timeline")
        ui.wait_for_selector(".timeline [data-label]")
        draws.append(ui.evaluate("performance.now()"))
        ui.goto(f"{ui.base}/runs/{run.pk}/")
        ui.wait_for_selector(".runview .react-flow__node")
        draws.append(ui.evaluate("performance.now()"))
    timeline_ms, graph_ms = draws[0::2], draws[1::2]
    expect(ui.locator(".runview")).to_have_attribute("data-live", "true")

    # Live: settle pending steps at RATE a second from this process; the browser applies each event.
    ui.evaluate("""() => { window.__applied = []; const s = window.weft.store;
        s.subscribe(() => window.__applied.push([performance.now(), s.lastSeq])); }""")
    first_seq = ui.evaluate("window.weft.store.lastSeq")
    ids = list(StepRun.objects.filter(run=run, status="pending").exclude(node_id="root")
               .order_by("node_id").values_list("node_id", flat=True)[:RATE * SECONDS])
    sent_at = {}
    started = time.monotonic()
    for i, node_id in enumerate(ids):
        delay = started + i / RATE - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        step_complete(run_id=run.pk, node_id=node_id, output={"i": i})
        sent_at[i] = time.monotonic()
    send_s = time.monotonic() - started
    target = first_seq + len(ids)
    ui.wait_for_function(f"window.weft.store.lastSeq >= {target}", timeout=120_000)
    applied = ui.evaluate("window.__applied")
    last_seq = ui.evaluate("window.weft.store.lastSeq")
    span_ms = applied[-1][0] - applied[0][0] if len(applied) > 1 else 0
    rate = (last_seq - first_seq) / (span_ms / 1000) if span_ms else float("nan")
    print(f"\nrun view, {STEPS} steps: graph first drawn {statistics.median(graph_ms):.0f} ms "
          f"(median of {len(graph_ms)}: {', '.join(f'{v:.0f}' for v in graph_ms)}), timeline "
          f"{statistics.median(timeline_ms):.0f} ms; live: {last_seq - first_seq} events sent at "
          f"{len(ids) / send_s:.0f}/s, applied at {rate:.0f}/s over {span_ms / 1000:.1f} s in {len(applied)} renders")
    assert last_seq >= target
