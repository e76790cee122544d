"""The timeline in a real browser: the server's critical path on the graph and the timeline, a critical mark
unlike any status colour, retry back-off and waits drawn as the step's own segments, a legend of what is
drawn, and every attempt visible at the default zoom."""

from __future__ import annotations

import math
from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from engine.models import Attempt, Run, StepRun
from engine.services.scheduler import run_start
from engine.services.workflows import workflow_save
from tests.conftest import definition, node
from tests.e2e.conftest import screenshot
from tests.e2e.test_accessibility import set_theme

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

STATUSES = ("pending", "queued", "running", "waiting", "retry_wait", "succeeded", "failed", "skipped",
            "upstream_failed", "cancelled")


def seeded_run(slug, nodes, edges, history, *, finished=True, ago=7200):
    """A run whose attempts are ``history``: node id -> [(queued, started, finished, outcome)], in seconds
    from ``ago`` seconds back; each step succeeded at its last attempt's end (unless
    ``finished`` is False: the run is still running)."""
    run, _ = run_start(workflow=workflow_save(definition=definition(slug, nodes, edges))[0], inputs={})
    t0 = timezone.now() - timedelta(seconds=ago)
    at = lambda s: None if s is None else t0 + timedelta(seconds=s)  # noqa: E731
    steps = {s.node_id: s for s in StepRun.objects.filter(run=run)}
    Attempt.objects.bulk_create([
        Attempt(step=steps[n], number=i + 1, queued_at=at(q), started_at=at(s), finished_at=at(f), outcome=o,
                worker="w")
        for n, attempts in history.items() for i, (q, s, f, o) in enumerate(attempts)
    ])
    for n, attempts in history.items():
        StepRun.objects.filter(pk=steps[n].pk).update(status="succeeded", attempt=len(attempts),
                                                      finished_at=at(attempts[-1][2]))
    if finished:
        end = max(a[2] for attempts in history.values() for a in attempts)
        Run.objects.filter(pk=run.pk).update(status="succeeded", finished_at=at(end))
    return run, at


def critical_run():
    # The quick chain waits long in its queue but runs 2 s a step; the slow branch runs 30 s. By time spent
    # executing (the one definition) the slow branch is critical; by queued-to-finished the quick chain is.
    nodes = [node(n) for n in ("a", "q1", "q2", "q3", "slow", "end")]
    edges = [("a", "q1"), ("q1", "q2"), ("q2", "q3"), ("q3", "end"), ("a", "slow"), ("slow", "end")]
    history = {
        "a": [(0, 0.5, 2, "succeeded")],
        "q1": [(2, 20, 22, "succeeded")], "q2": [(22, 40, 42, "succeeded")], "q3": [(42, 60, 62, "succeeded")],
        "slow": [(2, 2.5, 32.5, "succeeded")],
        "end": [(62, 62.5, 64, "succeeded")],
    }
    return seeded_run("critical-e2e", nodes, edges, history)[0]


def test_the_api_the_graph_and_the_timeline_show_one_critical_path(ui):
    run = critical_run()
    ui.goto(f"{ui.base}/runs/{run.pk}/")
    expect(ui.locator(".runview")).to_have_attribute("data-live", "true")
    api = ui.evaluate("id => fetch(`/api/runs/${id}/timeline/`).then(r => r.json())", str(run.pk))
    assert api["critical_path"] == ["a", "slow", "end"]
    marked = ui.locator('.runview .wnode[data-critical="true"]')
    expect(marked).to_have_count(3)
    assert sorted(marked.evaluate_all("ns => ns.map(n => n.dataset.nodeId)")) == sorted(api["critical_path"])
    expect(ui.locator(".react-flow__edge.edge-critical")).to_have_count(2)  # a -> slow -> end
    screenshot(ui, "graph-critical-path")
    ui.get_by_role("tab", name="Timeline").click()
    timeline = ui.locator(".timeline")
    expect(timeline.locator('[data-node-id="end"][data-attempt="1"]')).to_be_visible()
    starred = timeline.locator(".tlabel.critical").evaluate_all("ts => ts.map(t => t.dataset.label)")
    assert sorted(starred) == sorted(api["critical_path"])
    expect(timeline.locator(".timeline-bar")).to_contain_text("critical path: a → slow → end")


def _rgb(css: str) -> tuple[float, ...]:
    inside = css[css.index("(") + 1:css.index(")")].replace(",", " ").split()
    return tuple(float(v) for v in inside[:3])


def test_the_critical_mark_is_a_colour_no_status_uses_in_light_and_dark_mode(ui):
    run = critical_run()
    for theme in ("light", "dark"):
        ui.goto(f"{ui.base}/runs/{run.pk}/?tab=timeline")
        set_theme(ui, theme)
        crit = ui.locator(".timeline .trow.critical .seg-running").first
        expect(crit).to_be_visible()
        mark = crit.evaluate("el => getComputedStyle(el).stroke")
        statuses = ui.evaluate("""names => {
            const probe = document.createElement('span'); document.body.append(probe);
            const out = {};
            for (const n of names) { probe.style.color = `var(--s-${n})`; out[n] = getComputedStyle(probe).color; }
            probe.remove(); return out; }""", list(STATUSES))
        for status, colour in statuses.items():
            assert math.dist(_rgb(mark), _rgb(colour)) > 60, (theme, status, mark, colour)
        swatch = ui.locator('.legend [data-legend-key="crit"] .sw')
        swatch = swatch.evaluate("el => getComputedStyle(el).borderTopColor")
        assert _rgb(swatch) == _rgb(mark)
        screenshot(ui, f"timeline-critical-{theme}")
        ui.get_by_role("tab", name="Graph").click()
        outline = ui.locator('.wnode[data-node-id="slow"]').evaluate("el => getComputedStyle(el).outlineColor")
        assert _rgb(outline) == _rgb(mark), theme
        screenshot(ui, f"graph-critical-{theme}")


def test_retry_back_off_and_waits_are_drawn_as_the_steps_own_segments(ui):
    nodes = [node(n) for n in ("flaky", "doubt", "retrying")]
    history = {
        "flaky": [(0, 1, 3, "failed"), (23, 24, 26, "succeeded")],  # 20 s of retry back-off
        "doubt": [(0, 1, 4, "waiting"), (34, 35, 37, "succeeded")],  # in doubt 30 s, then retried
        "retrying": [(0, 1, 5, "failed")],  # in back-off still
    }
    run, _ = seeded_run("waits-e2e", nodes, [], history, finished=False, ago=60)
    step = StepRun.objects.filter(run=run, node_id="retrying")
    step.update(status="queued")
    step.update(status="running")
    step.update(status="retry_wait", finished_at=None, next_attempt_at=timezone.now() + timedelta(hours=1))
    ui.goto(f"{ui.base}/runs/{run.pk}/?tab=timeline")
    timeline = ui.locator(".timeline")
    expect(timeline.locator('[data-node-id="flaky"][data-attempt="2"]')).to_be_visible()

    def between(node_id, kind):
        wait = f'[data-wait="{node_id}"][data-wait-kind="{kind}"][data-after-attempt="1"]'
        expect(timeline.locator(wait)).to_have_count(1)
        w, first, second = boxes(ui, wait, f'[data-node-id="{node_id}"][data-attempt="1"]',
                                 f'[data-node-id="{node_id}"][data-attempt="2"]')
        assert abs(w["x"] - (first["x"] + first["width"])) < 2.5, (w, first)
        assert abs(w["x"] + w["width"] - second["x"]) < 2.5, (w, second)
        assert w["width"] > 20

    between("flaky", "backoff")
    between("doubt", "waiting")
    # The step still in back-off: its segment runs from its failed attempt to now.
    tail, now = boxes(ui, '[data-wait="retrying"][data-wait-kind="backoff"]', 'svg[role="img"] .nowline')
    assert abs(tail["x"] + tail["width"] - now["x"]) < 4, (tail, now)
    legend = timeline.locator(".legend")
    for key, text in (("backoff", "retry back-off"), ("waiting", "waiting"), ("now", "now")):
        expect(legend.locator(f'[data-legend-key="{key}"]')).to_contain_text(text)
    assert_legend_explains_everything_drawn(timeline)
    screenshot(ui, "timeline-waits-light")
    set_theme(ui, "dark")
    expect(timeline.locator('[data-wait="flaky"]')).to_have_count(1)
    screenshot(ui, "timeline-waits-dark")


def boxes(page, *selectors):
    """The timeline elements' boxes, measured at one moment: a live chart moves as the clock ticks."""
    return page.evaluate("""sels => sels.map(s => {
        const r = document.querySelector(`.timeline ${s}`).getBoundingClientRect();
        return {x: r.x, width: r.width}; })""", list(selectors))


def assert_legend_explains_everything_drawn(timeline):
    drawn = set(timeline.locator("[data-legend]").evaluate_all("es => es.map(e => e.dataset.legend)"))
    keys = set(timeline.locator(".legend [data-legend-key]").evaluate_all("es => es.map(e => e.dataset.legendKey)"))
    assert drawn and drawn <= keys, (drawn, keys)


def test_the_legend_names_every_colour_a_mapped_nodes_strip_draws(ui, drain):
    d = definition("strip-e2e", [
        node("source", kwargs={"xs": "{{ inputs.xs }}"}),
        {**node("each", kwargs={"item": "{{ item }}"}), "for_each": "{{ nodes.source.output.xs }}"},
    ], [("source", "each")])
    run, _ = run_start(workflow=workflow_save(definition=d)[0], inputs={"xs": list(range(6))})
    drain()
    items = Attempt.objects.filter(step__run=run, step__map_parent__isnull=False).order_by("step__map_index")
    Attempt.objects.filter(pk__in=[a.pk for a in items[:2]]).update(outcome="cancelled")
    Attempt.objects.filter(pk__in=[a.pk for a in items[2:4]]).update(outcome="waiting")
    ui.goto(f"{ui.base}/runs/{run.pk}/?tab=timeline")
    timeline = ui.locator(".timeline")
    expect(timeline.locator('[data-strip="each"] [data-legend]').first).to_be_attached()
    strip = timeline.locator('[data-strip="each"] [data-legend]').evaluate_all("es => es.map(e => e.dataset.legend)")
    strip = set(strip)
    assert {"cancelled", "waiting", "succeeded"} <= strip, strip
    assert_legend_explains_everything_drawn(timeline)
    screenshot(ui, "timeline-strip-legend")


def test_two_quick_attempts_in_a_long_run_are_each_visible_at_the_default_zoom(ui):
    history = {
        "long": [(0, 0, 3600, "succeeded")],
        "quick": [(100, 100.01, 100.03, "failed"), (100.05, 100.06, 100.08, "succeeded")],
    }
    run, _ = seeded_run("min-width-e2e", [node("long"), node("quick")], [], history)
    ui.goto(f"{ui.base}/runs/{run.pk}/?tab=timeline")
    timeline = ui.locator(".timeline")
    expect(timeline.locator('[data-node-id="quick"][data-attempt="1"]')).to_be_visible()
    expect(timeline.locator('[data-node-id="quick"][data-attempt="2"]')).to_be_visible()
    # Measured and hit in one go in the page: the chart may still settle to its box's width between calls.
    a, b, hits = ui.evaluate("""() => {
        const boxes = [1, 2].map(n => document.querySelector(`.timeline [data-node-id="quick"][data-attempt="${n}"]`)
            .getBoundingClientRect());
        const hits = boxes.map(r => document.elementFromPoint(r.x + r.width / 2, r.y + r.height / 2)
            ?.closest('[data-attempt]')?.dataset.attempt);
        return [...boxes.map(r => ({x: r.x, width: r.width})), hits]; }""")
    assert a["width"] >= 3 and b["width"] >= 3, (a, b)
    assert a["x"] + a["width"] <= b["x"] + 0.5, (a, b)  # side by side, neither covering the other
    assert hits == ["1", "2"]  # the pointer reaches each
    screenshot(ui, "timeline-min-width")


@pytest.mark.workers
def test_the_graph_marks_the_apis_critical_path_once_a_live_run_finishes(ui, workers):
    d = definition("critical-live-e2e", [node("a"), node("slow", "tests.sleep", kwargs={"seconds": 1.5}),
                                         node("q1"), node("q2"), node("q3")],
                   [("a", "slow"), ("a", "q1"), ("q1", "q2"), ("q2", "q3")])
    run, _ = run_start(workflow=workflow_save(definition=d)[0], inputs={})
    ui.goto(f"{ui.base}/runs/{run.pk}/")
    expect(ui.locator(".runview")).to_have_attribute("data-live", "true")
    expect(ui.locator('.wnode[data-critical="true"]')).to_have_count(0)  # nothing has run yet
    workers.start()
    expect(ui.locator(".runview")).to_have_attribute("data-run-status", "succeeded", timeout=60_000)
    api = ui.evaluate("id => fetch(`/api/runs/${id}/timeline/`).then(r => r.json())", str(run.pk))
    assert api["critical_path"] == ["a", "slow"]
    expect(ui.locator('.wnode[data-critical="true"]')).to_have_count(2)
    marked = ui.locator('.wnode[data-critical="true"]').evaluate_all("ns => ns.map(n => n.dataset.nodeId)")
    assert sorted(marked) == ["a", "slow"]
    expect(ui.locator('.graph-legend[data-legend-key="crit"]')).to_contain_text("critical path")
