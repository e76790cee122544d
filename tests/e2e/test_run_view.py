"""The run view in a real browser: live status, Retry with its preview, the timeline, latency."""

from __future__ import annotations

import statistics
import time
from datetime import UTC, datetime, timedelta

import pytest
from django.db import transaction
from playwright.sync_api import expect

from engine.models import Run
from engine.services.scheduler import run_start, step_complete
from engine.services.workflows import workflow_save
from tests.conftest import definition, node, wait_for
from tests.e2e.conftest import screenshot

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def status_of(page, node_id: str):
    return page.locator(f'.runview [data-node-id="{node_id}"].wnode')


@pytest.mark.workers
def test_retry_failed_middle_step_turns_it_and_descendants_succeeded_live(ui, workers, tmp_path):
    flag, count = tmp_path / "fixed", tmp_path / "count"
    d = definition(
        "retry-e2e",
        [node("a", "tests.count", kwargs={"path": str(count)}),
         node("b", "tests.fail_until_flag", kwargs={"flag": str(flag)}, retry={"max_attempts": 1}),
         node("c", "tests.count", kwargs={"path": str(count)})],
        [("a", "b"), ("b", "c")],
    )
    wf = workflow_save(definition=d)[0]
    run, _ = run_start(workflow=wf, inputs={})
    workers.start()
    ui.goto(f"{ui.base}/runs/{run.pk}/")
    expect(ui.locator(".runview")).to_have_attribute("data-live", "true")
    expect(status_of(ui, "b")).to_have_attribute("data-status", "failed", timeout=30_000)
    expect(status_of(ui, "c")).to_have_attribute("data-status", "upstream_failed")
    expect(status_of(ui, "a")).to_have_attribute("data-status", "succeeded")
    expect(ui.locator(".runview")).to_have_attribute("data-run-status", "failed")
    # Status is not colour alone: the failed node says so in text.
    expect(status_of(ui, "b")).to_contain_text("Failed")
    expect(status_of(ui, "c")).to_contain_text("Upstream failed")

    # Big runs: hide what finished well (the failed step and the one it blocked stay in view), then
    # jump to the first failure.
    ui.get_by_label("Hide finished steps").check()
    expect(ui.locator(".runview .wnode[data-node-id]")).to_have_count(2)
    expect(ui.locator('.runview .wnode[data-node-id="a"]')).to_have_count(0)
    ui.get_by_role("button", name="Jump to first failure").click()
    ui.wait_for_url(f"{ui.base}/runs/{run.pk}/steps/b/")
    expect(status_of(ui, "b")).to_be_visible()
    expect(status_of(ui, "c")).to_be_visible()
    ui.get_by_label("Hide finished steps").uncheck()
    expect(ui.locator(".runview .wnode[data-node-id]")).to_have_count(3)
    ui.get_by_role("button", name="Close step details").click()
    ui.wait_for_url(f"{ui.base}/runs/{run.pk}/")

    status_of(ui, "b").click()
    ui.wait_for_url(f"{ui.base}/runs/{run.pk}/steps/b/")
    drawer = ui.locator('[data-drawer-node="b"]')
    expect(drawer).to_contain_text("flag")  # the error
    screenshot(ui, "run-failed-step-drawer")
    flag.write_text("fixed")
    drawer.get_by_role("button", name="Retry", exact=True).click()
    dialog = ui.get_by_role("dialog")
    expect(dialog.locator("[data-preview-node]")).to_have_count(2)  # b and its blocked descendant c
    expect(dialog.locator('[data-preview-node="b"]')).not_to_contain_text("has not run yet")  # b failed: it ran
    expect(dialog.locator('[data-preview-node="c"]')).to_contain_text("has not run yet")  # c was blocked by b
    screenshot(ui, "run-retry-dialog")
    dialog.get_by_role("button", name="Confirm retry").click()

    expect(status_of(ui, "b")).to_have_attribute("data-status", "succeeded", timeout=30_000)
    expect(status_of(ui, "c")).to_have_attribute("data-status", "succeeded", timeout=30_000)
    expect(ui.locator(".runview")).to_have_attribute("data-run-status", "succeeded")
    assert count.read_text().split() == ["a", "c"]  # the first step did not run again
    screenshot(ui, "run-succeeded")

    # The timeline: one bar per attempt, two for the retried step.
    ui.get_by_role("tab", name="Timeline").click()
    timeline = ui.locator(".timeline")
    expect(timeline.locator('[data-node-id="b"][data-attempt]')).to_have_count(2)
    expect(timeline.locator('[data-node-id="a"][data-attempt]')).to_have_count(1)
    expect(timeline.locator('[data-node-id="c"][data-attempt]')).to_have_count(1)
    assert timeline.locator('[data-node-id="b"][data-attempt="1"]').count() == 1
    assert timeline.locator('[data-node-id="b"][data-attempt="2"]').count() == 1
    # A time axis from the first queued attempt, and a legend for the outcome colours the bars use.
    expect(timeline.locator('.axis [data-tick-ms="0"]')).to_have_count(1)
    assert timeline.locator(".axis [data-tick-ms]").count() >= 3
    expect(timeline.locator(".legend")).to_contain_text("succeeded")
    expect(timeline.locator(".legend")).to_contain_text("failed")
    screenshot(ui, "run-timeline")
    # Zoomed in and scrolled to the end, the bars move left under the step names, which stay in view.
    for _ in range(6):
        timeline.get_by_role("button", name="Zoom in").click()
    timeline.locator(".timeline-scroll").evaluate("el => { el.scrollLeft = el.scrollWidth; }")
    ui.wait_for_function("""() => {
        const box = document.querySelector('.timeline-scroll'), label = document.querySelector('[data-label="b"]');
        const left = label.getBoundingClientRect().left - box.getBoundingClientRect().left;
        return box.scrollLeft > 500 && left >= 0 && left < 40;
    }""")
    screenshot(ui, "run-timeline-zoomed")

    # The deep link to a step opens its drawer.
    ui.goto(f"{ui.base}/runs/{run.pk}/steps/c/")
    expect(ui.locator('[data-drawer-node="c"]')).to_be_visible()


@pytest.mark.workers
def test_rerun_from_here_previews_and_reruns_the_step_and_its_descendants_live(ui, workers, tmp_path):
    count = tmp_path / "count"
    d = definition("rerun-e2e", [node(n, "tests.count", kwargs={"path": str(count)}) for n in ("a", "b", "c")],
                   [("a", "b"), ("b", "c")])
    run, _ = run_start(workflow=workflow_save(definition=d)[0], inputs={})
    workers.start()
    ui.goto(f"{ui.base}/runs/{run.pk}/steps/b/")
    expect(ui.locator(".runview")).to_have_attribute("data-run-status", "succeeded", timeout=30_000)
    assert count.read_text().split() == ["a", "b", "c"]

    ui.locator('[data-drawer-node="b"]').get_by_role("button", name="Rerun from here", exact=True).click()
    dialog = ui.get_by_role("dialog")
    expect(dialog.locator("[data-preview-node]")).to_have_count(2)  # b and everything downstream of it
    expect(dialog.locator('[data-preview-node="b"]')).to_be_visible()
    expect(dialog.locator('[data-preview-node="c"]')).to_contain_text("succeeded before")
    expect(dialog.locator('[data-preview-node="a"]')).to_have_count(0)
    screenshot(ui, "run-rerun-dialog")
    dialog.get_by_role("button", name="Confirm rerun").click()

    expect(status_of(ui, "b")).to_have_attribute("data-attempts", "2", timeout=30_000)
    expect(status_of(ui, "c")).to_have_attribute("data-attempts", "2", timeout=30_000)
    expect(ui.locator(".runview")).to_have_attribute("data-run-status", "succeeded", timeout=30_000)
    for node_id in ("a", "b", "c"):
        expect(status_of(ui, node_id)).to_have_attribute("data-status", "succeeded")
    assert count.read_text().split() == ["a", "b", "c", "b", "c"]  # a did not run again


RECORDER = """
window.__seen = {};
const seen = window.__seen;
const observer = new MutationObserver((records) => {
  const t = performance.timeOrigin + performance.now();
  for (const r of records) {
    const el = r.target;
    if (el.dataset && el.dataset.nodeId && el.dataset.status === "succeeded" && !(el.dataset.nodeId in seen)) {
      seen[el.dataset.nodeId] = t;
    }
  }
});
observer.observe(document.body, {attributes: true, attributeFilter: ["data-status"], subtree: true});
"""


def test_commit_to_browser_latency_median_is_reported(ui):
    n = 50
    d = definition("latency-e2e", [node(f"n{i:02d}", "tests.noop") for i in range(n)], [])
    wf = workflow_save(definition=d)[0]
    run, _ = run_start(workflow=wf, inputs={})  # no workers: every step stays queued until completed below
    ui.goto(f"{ui.base}/runs/{run.pk}/")
    expect(ui.locator(".runview")).to_have_attribute("data-live", "true")
    expect(ui.locator('.runview [data-status="queued"].wnode')).to_have_count(n)
    ui.evaluate(RECORDER)
    committed = {}
    for i in range(n):
        node_id = f"n{i:02d}"
        # The time is taken just before the commit: PostgreSQL delivers the transaction's NOTIFY as it commits,
        # so the browser can hear of it before an on_commit callback in this process gets to run.
        with transaction.atomic():
            step_complete(run_id=run.pk, node_id=node_id, output={"i": i}, actor="latency")
            committed[node_id] = time.time() * 1000
        time.sleep(0.05)
    seen = wait_for(lambda: (s := ui.evaluate("window.__seen")) and len(s) == n and s, timeout=20,
                    message="every transition shown in the browser")
    latencies = sorted(seen[k] - committed[k] for k in committed)
    median = statistics.median(latencies)
    print(f"\ncommit-to-browser latency over {n} transitions: median {median:.1f} ms, "
          f"p90 {latencies[int(n * 0.9)]:.1f} ms, max {latencies[-1]:.1f} ms")
    assert Run.objects.get(pk=run.pk).status == "succeeded"
    assert all(lat >= 0 for lat in latencies)
    assert median < 100


def test_timeline_of_a_thousand_steps_is_virtualised_and_compresses_idle_gaps(ui):
    from datetime import timedelta

    from django.utils import timezone

    from engine.models import Attempt, StepRun

    n = 1000
    d = definition("big-e2e", [node(f"n{i:04d}", "tests.noop") for i in range(n)], [])
    run, _ = run_start(workflow=workflow_save(definition=d)[0], inputs={})
    # Recorded history: half the steps ran at once, the other half three hours later (an idle gap),
    # and nothing in the two hours since.
    t0 = timezone.now() - timedelta(hours=5)
    rows = []
    for i, step in enumerate(StepRun.objects.filter(run=run).order_by("node_id")):
        start = t0 + timedelta(seconds=i % 50) + (timedelta(hours=3) if i >= n // 2 else timedelta())
        rows.append(Attempt(step=step, number=1, queued_at=start - timedelta(seconds=1), started_at=start,
                            finished_at=start + timedelta(seconds=2), outcome="succeeded", worker="w"))
    Attempt.objects.bulk_create(rows)
    started = time.monotonic()
    ui.goto(f"{ui.base}/runs/{run.pk}/?tab=timeline")
    expect(ui.locator(".runview")).to_have_attribute("data-live", "true", timeout=30_000)
    timeline = ui.locator(".timeline")
    expect(timeline.locator('[data-node-id="n0000"][data-attempt="1"]')).to_be_visible()
    print(f"\ntimeline of {n} steps: first paint after {1000 * (time.monotonic() - started):.0f} ms")
    drawn = timeline.locator("[data-attempt]").count()
    assert 0 < drawn < 200  # only the rows in view are in the DOM
    # The three idle hours, and the quiet two hours since, are squeezed and marked.
    expect(timeline.locator(".gap")).to_have_count(2)
    timeline.locator(".timeline-scroll").evaluate("el => el.scrollTop = el.scrollHeight")
    expect(timeline.locator('[data-node-id="n0999"][data-attempt="1"]')).to_be_attached()
    screenshot(ui, "run-timeline-1000")


@pytest.mark.workers
def test_in_doubt_step_says_what_is_in_doubt_and_is_resolved_from_the_drawer(ui, workers, tmp_path):
    import os
    import signal

    from engine.models import StepRun

    effects, hang = tmp_path / "effects", tmp_path / "hang"
    hang.write_text("hang")
    charge = node("charge", "tests.unsafe_call", kwargs={"path": str(effects), "hang_flag": str(hang)})
    d = definition("doubt-e2e", [charge, node("after")], [("charge", "after")])
    run, _ = run_start(workflow=workflow_save(definition=d)[0], inputs={})
    workers.start()
    ui.goto(f"{ui.base}/runs/{run.pk}/steps/charge/")
    expect(status_of(ui, "charge")).to_have_attribute("data-status", "running", timeout=30_000)
    wait_for(lambda: effects.exists(), timeout=30, message="the call to start")
    # The worker dies mid-call: the call's journal entry is `started`, with no outcome.
    os.kill(int(StepRun.objects.get(run=run, node_id="charge").worker.rsplit(":", 1)[1]), signal.SIGKILL)
    hang.unlink()
    expect(status_of(ui, "charge")).to_have_attribute("data-status", "waiting", timeout=30_000)
    drawer = ui.locator('[data-drawer-node="charge"]')
    doubt = drawer.locator('[data-in-doubt="charge"]')
    expect(doubt).to_be_visible()
    expect(doubt.locator("[data-in-doubt-key]")).to_have_text("charge")
    expect(doubt).to_contain_text("not safe to repeat")
    expect(doubt.locator("[data-in-doubt-message]")).to_contain_text("started in an earlier attempt and never finished")
    expect(doubt).to_contain_text("attempt 1")  # from the journal entry: when the call started, and in which attempt
    retry = doubt.get_by_role("button", name="Retry", exact=True)
    complete = doubt.get_by_role("button", name="Mark succeeded…", exact=True)
    expect(retry).to_be_enabled()
    expect(complete).to_be_enabled()
    expect(drawer.get_by_role("button", name="Retry", exact=True)).to_have_count(1)  # offered once, in the banner
    screenshot(ui, "run-in-doubt-drawer")

    # Retry warns that the unfinished call runs again; not taken here.
    retry.click()
    dialog = ui.get_by_role("dialog")
    expect(dialog.locator('[data-unsafe-node="charge"]')).to_contain_text("call charge")
    expect(dialog).to_contain_text("in doubt")
    screenshot(ui, "run-in-doubt-retry-dialog")
    dialog.get_by_role("button", name="Close").click()
    expect(ui.get_by_role("dialog")).to_have_count(0)

    # The operator checked the outside system: the charge went through. Complete with its real output.
    complete.click()
    dialog = ui.get_by_role("dialog")
    expect(dialog).to_contain_text("is not made again")
    dialog.get_by_label("Output (JSON)").fill('{"result": "done", "charge_id": "ch_1"}')
    dialog.get_by_role("button", name="Confirm").click()
    expect(status_of(ui, "charge")).to_have_attribute("data-status", "succeeded")
    expect(drawer.locator("[data-in-doubt]")).to_have_count(0)
    expect(drawer).to_contain_text('"charge_id": "ch_1"')
    expect(status_of(ui, "after")).to_have_attribute("data-status", "succeeded", timeout=30_000)
    expect(ui.locator(".runview")).to_have_attribute("data-run-status", "succeeded")
    assert effects.read_text().split() == ["effect"]  # the call was not made twice
    assert Run.objects.get(pk=run.pk).status == "succeeded"


def test_repeat_dialog_warns_about_nodes_not_safe_to_repeat_and_not_about_safe_ones(ui):
    url = "https://payments.example/charge"
    d = definition("unsafe-e2e", [
        node("a", "tests.noop"),
        {"id": "charge", "type": "http", "config": {"method": "POST", "url": url, "send_idempotency_key": False}},
        {"id": "keyed", "type": "http", "config": {"method": "POST", "url": url}},
        {"id": "lookup", "type": "http", "config": {"url": url, "send_idempotency_key": False}},
        {"id": "agent", "type": "agent", "config": {"prompt": "refund it", "tools": [
            {"name": "refund", "type": "http", "url": url, "safe_to_repeat": False},
            {"name": "notes", "type": "task", "function": "weft.list_notes"}]}},
    ], [("a", x) for x in ("charge", "keyed", "lookup", "agent")])
    run, _ = run_start(workflow=workflow_save(definition=d)[0], inputs={})  # no workers: completed by hand
    for node_id in ("a", "charge", "keyed", "lookup", "agent"):
        step_complete(run_id=run.pk, node_id=node_id, output={}, actor="e2e")
    ui.goto(f"{ui.base}/runs/{run.pk}/steps/a/")
    expect(ui.locator(".runview")).to_have_attribute("data-run-status", "succeeded")
    ui.locator('[data-drawer-node="a"]').get_by_role("button", name="Rerun from here", exact=True).click()
    dialog = ui.get_by_role("dialog")
    expect(dialog.locator("[data-preview-node]")).to_have_count(5)
    expect(dialog.locator('[data-unsafe-node="charge"]')).to_contain_text(f"POST {url} without an Idempotency-Key")
    expect(dialog.locator('[data-unsafe-node="agent"]')).to_contain_text("tool refund")
    expect(dialog.locator('[data-unsafe-node="agent"]')).not_to_contain_text("notes")
    expect(dialog.locator("[data-unsafe-node]")).to_have_count(2)
    for safe in ("a", "keyed", "lookup"):
        expect(dialog.locator(f'[data-preview-node="{safe}"]')).not_to_contain_text("not safe to repeat")
    screenshot(ui, "run-rerun-dialog-unsafe")


def test_drawer_upstream_statuses_follow_the_live_graph(ui):
    from engine.services.scheduler import run_cancel

    d = definition("upstream-e2e", [node("a"), node("b"), node("c")], [("a", "c"), ("b", "c")])
    run, _ = run_start(workflow=workflow_save(definition=d)[0], inputs={})  # no workers: a and b stay queued
    ui.goto(f"{ui.base}/runs/{run.pk}/steps/c/")
    expect(ui.locator(".runview")).to_have_attribute("data-live", "true")
    drawer = ui.locator('[data-drawer-node="c"]')
    up_a, up_b = drawer.locator('[data-upstream-node="a"]'), drawer.locator('[data-upstream-node="b"]')
    expect(up_a.locator(".badge")).to_have_attribute("data-status", "queued")
    expect(up_b.locator(".badge")).to_have_attribute("data-status", "queued")

    # Only an upstream step moves; the drawer's own step stays pending.
    step_complete(run_id=run.pk, node_id="a", output={"answer": 42}, actor="e2e")
    expect(status_of(ui, "a")).to_have_attribute("data-status", "succeeded")
    expect(up_a.locator(".badge")).to_have_attribute("data-status", "succeeded")
    expect(up_a.locator(".badge")).to_contain_text("Succeeded")
    expect(up_a).to_contain_text('"answer": 42')  # its output, read again
    expect(status_of(ui, "c")).to_have_attribute("data-status", "pending")
    expect(up_b.locator(".badge")).to_have_attribute("data-status", "queued")

    run_cancel(run_id=run.pk, actor="e2e")
    expect(ui.locator(".runview")).to_have_attribute("data-run-status", "cancelled")
    expect(up_b.locator(".badge")).to_have_attribute("data-status", "cancelled")
    expect(up_b.locator(".badge")).to_contain_text("Cancelled")
    expect(up_a.locator(".badge")).to_have_attribute("data-status", "succeeded")
    screenshot(ui, "run-drawer-upstream-live")


def test_timeline_axis_stays_pinned_while_the_bars_scroll(ui):
    from django.utils import timezone

    from engine.models import Attempt, StepRun

    n = 150
    d = definition("axis-e2e", [node(f"s{i:03d}", "tests.noop") for i in range(n)],
                   [(f"s{i:03d}", f"s{i + 1:03d}") for i in range(n - 1)])
    run, _ = run_start(workflow=workflow_save(definition=d)[0], inputs={})
    t0 = timezone.now() - timedelta(minutes=10)
    Attempt.objects.bulk_create([
        Attempt(step=step, number=1, queued_at=t0 + timedelta(seconds=2 * i),
                started_at=t0 + timedelta(seconds=2 * i + 0.5), finished_at=t0 + timedelta(seconds=2 * i + 2),
                outcome="succeeded", worker="w")
        for i, step in enumerate(StepRun.objects.filter(run=run).order_by("node_id"))
    ])
    ui.goto(f"{ui.base}/runs/{run.pk}/?tab=timeline")
    # Live first: the "Connecting…" banner above the timeline moves it when it goes.
    expect(ui.locator(".runview")).to_have_attribute("data-live", "true")
    timeline = ui.locator(".timeline")
    scroller = timeline.locator(".timeline-scroll")
    expect(timeline.locator('[data-node-id="s000"][data-attempt="1"]')).to_be_visible()
    zero = timeline.locator('.axis [data-tick-ms="0"] text')
    expect(zero).to_be_in_viewport()

    def axis_inside_the_scroll_box():
        box, axis = scroller.bounding_box(), timeline.locator(".axis").bounding_box()
        return box["y"] - 1 <= axis["y"] and axis["y"] + axis["height"] <= box["y"] + box["height"]

    assert axis_inside_the_scroll_box()
    scroller.evaluate("el => el.scrollTop = el.scrollHeight / 2")
    expect(timeline.locator('[data-node-id="s075"][data-attempt="1"]')).to_be_in_viewport()
    expect(timeline.locator('[data-node-id="s000"][data-attempt="1"]')).not_to_be_in_viewport()
    assert scroller.evaluate("el => el.scrollTop") > 1000
    expect(zero).to_be_in_viewport()
    assert axis_inside_the_scroll_box()
    # The bars scroll under the axis, not over it: the axis is what the browser hits at its place.
    ax = zero.bounding_box()
    hit = ui.evaluate("([x, y]) => !!document.elementFromPoint(x, y).closest('.timeline-axis')",
                      [ax["x"] + ax["width"] / 2, ax["y"] + ax["height"] / 2])
    assert hit
    screenshot(ui, "run-timeline-scrolled")
    scroller.evaluate("el => el.scrollTop = el.scrollHeight")
    expect(timeline.locator('[data-node-id="s149"][data-attempt="1"]')).to_be_in_viewport()
    expect(zero).to_be_in_viewport()


def test_timeline_ticks_under_a_second_apart_read_as_precisely_as_their_step(ui):
    from django.utils import timezone

    from engine.models import Attempt, StepRun

    d = definition("ticks-e2e", [node(f"s{i}", "tests.noop") for i in range(3)], [("s0", "s1"), ("s1", "s2")])
    run, _ = run_start(workflow=workflow_save(definition=d)[0], inputs={})
    t0 = timezone.now() - timedelta(minutes=1)
    Attempt.objects.bulk_create([  # three attempts over 4.5 s: ticks past one second, a few ms apart
        Attempt(step=step, number=1, queued_at=t0 + timedelta(seconds=1.5 * i),
                started_at=t0 + timedelta(seconds=1.5 * i + 0.1), finished_at=t0 + timedelta(seconds=1.5 * i + 1.5),
                outcome="succeeded", worker="w")
        for i, step in enumerate(StepRun.objects.filter(run=run).order_by("node_id"))
    ])
    StepRun.objects.filter(run=run).update(status="succeeded")  # finished: the axis ends at the last bar
    Run.objects.filter(pk=run.pk).update(status="succeeded", finished_at=t0 + timedelta(seconds=4.5))
    ui.goto(f"{ui.base}/runs/{run.pk}/?tab=timeline")
    timeline = ui.locator(".timeline")
    expect(timeline.locator('[data-node-id="s2"][data-attempt="1"]')).to_be_visible()
    for _ in range(6):
        timeline.get_by_role("button", name="Zoom in").click()
    ticks = timeline.locator(".axis [data-tick-ms]")
    ui.wait_for_function("() => document.querySelectorAll('.timeline .axis [data-tick-ms]').length > 40")
    at = ticks.evaluate_all("gs => gs.map(g => Number(g.dataset.tickMs))")
    labels = ticks.evaluate_all("gs => gs.map(g => g.textContent)")
    assert at[2] - at[1] < 1000 and at[-1] > 2000, at  # sub-second steps, and ticks past two seconds
    assert len(labels) == len(set(labels)), labels
    step = at[2] - at[1]
    digits = 1 if step >= 100 else 2 if step >= 10 else 3
    assert labels[at.index(1000 + step)] == f"+{(1000 + step) / 1000:.{digits}f} s", labels  # e.g. "+1.05 s"
    timeline.locator(".timeline-scroll").evaluate("el => { el.scrollLeft = el.scrollWidth * 0.2; }")
    screenshot(ui, "run-timeline-ticks")


def test_operator_buttons_mark_succeeded_skip_and_cancel_run(ui):
    d = definition("actions-e2e", [node("s1"), node("s2"), node("s3"), node("s4")],
                   [("s1", "s2"), ("s1", "s3"), ("s3", "s4")])
    run, _ = run_start(workflow=workflow_save(definition=d)[0], inputs={})  # no workers: s1 stays queued
    ui.goto(f"{ui.base}/runs/{run.pk}/steps/s1/")
    drawer = ui.locator('[data-drawer-node="s1"]')
    drawer.get_by_role("button", name="Mark succeeded…", exact=True).click()
    dialog = ui.get_by_role("dialog")
    dialog.get_by_label("Output (JSON)").fill('{"answer": 42}')
    dialog.get_by_role("button", name="Confirm").click()
    expect(status_of(ui, "s1")).to_have_attribute("data-status", "succeeded")
    expect(status_of(ui, "s2")).to_have_attribute("data-status", "queued")
    expect(drawer).to_contain_text('"answer": 42')

    status_of(ui, "s2").click()
    ui.locator('[data-drawer-node="s2"]').get_by_role("button", name="Skip", exact=True).click()
    ui.get_by_role("dialog").get_by_role("button", name="Confirm skip").click()
    expect(status_of(ui, "s2")).to_have_attribute("data-status", "skipped")
    expect(status_of(ui, "s2")).to_contain_text("Skipped")
    expect(ui.get_by_role("dialog")).to_have_count(0)  # closed once the API answered; focus is back

    # Keyboard only: focus a node on the canvas and press Enter to open its drawer; then cancel.
    s4 = ui.locator('.react-flow__node[data-id="s4"]')
    s4.focus()
    expect(s4).to_be_focused()
    ui.keyboard.press("Enter")
    ui.wait_for_url(f"{ui.base}/runs/{run.pk}/steps/s4/")
    expect(ui.locator('[data-drawer-node="s4"]')).to_be_visible()
    ui.get_by_role("button", name="Cancel run", exact=True).focus()
    ui.keyboard.press("Enter")
    ui.get_by_role("dialog").get_by_role("button", name="Confirm cancel").click()
    expect(ui.locator(".runview")).to_have_attribute("data-run-status", "cancelled")
    expect(ui.get_by_role("dialog")).to_have_count(0)
    expect(status_of(ui, "s3")).to_have_attribute("data-status", "cancelled")
    expect(status_of(ui, "s4")).to_have_attribute("data-status", "cancelled")
    assert Run.objects.get(pk=run.pk).status == "cancelled"
    screenshot(ui, "run-cancelled")


@pytest.mark.workers
def test_approval_step_is_approved_from_the_drawer(ui, workers):
    d = definition("approve-e2e",
                   [{"id": "gate", "type": "approval", "config": {"message": "Ship it?"}}, node("after")],
                   [("gate", "after")])
    run, _ = run_start(workflow=workflow_save(definition=d)[0], inputs={})
    workers.start()
    # The browser's clock trails the server's by half a minute: durations still never go below zero.
    ui.clock.install(time=datetime.now(UTC) - timedelta(seconds=30))
    ui.goto(f"{ui.base}/runs/{run.pk}/steps/gate/")
    expect(status_of(ui, "gate")).to_have_attribute("data-status", "waiting", timeout=30_000)
    drawer = ui.locator('[data-drawer-node="gate"]')
    expect(drawer.locator("[data-approval]")).to_contain_text("Ship it?")
    expect(drawer.locator(".drawer-status")).to_contain_text("attempt 1")
    expect(drawer.locator(".drawer-status")).not_to_contain_text("-")
    expect(status_of(ui, "gate").locator('[title="duration"]')).not_to_contain_text("-")
    expect(drawer.get_by_role("button", name="Reject", exact=True)).to_be_visible()
    screenshot(ui, "run-approval")
    drawer.get_by_role("button", name="Approve", exact=True).click()
    dialog = ui.get_by_role("dialog")
    dialog.get_by_label("Comment (optional)").fill("looks good")
    dialog.get_by_role("button", name="Confirm approval").click()
    expect(status_of(ui, "gate")).to_have_attribute("data-status", "succeeded")
    expect(status_of(ui, "after")).to_have_attribute("data-status", "succeeded", timeout=30_000)
    assert Run.objects.get(pk=run.pk).status == "succeeded"
