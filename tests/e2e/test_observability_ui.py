"""Run analytics on the workflow page and live step logs in the drawer, in a real browser."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

import tests.observability.tasks  # noqa: F401  (registers the obs.* functions in this process)
from engine.models import Run
from engine.services.scheduler import run_start
from engine.services.workflows import workflow_save
from tests.conftest import definition, node
from tests.e2e.conftest import screenshot

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

NO_BACKOFF = {"max_attempts": 2, "backoff_s": 0, "jitter": 0}


@pytest.fixture
def worker_env(worker_env):
    return {**worker_env, "WEFT_TASK_MODULES": "tests.tasks,tests.observability.tasks", "WEFT_LOG_FLUSH_S": "0.5"}


def test_workflow_analytics_page_shows_rates_charts_and_failing_node(ui, drain):
    workflow, _, _ = workflow_save(definition=definition("analytics-e2e", [
        node("work", "obs.by_input", retry=NO_BACKOFF), node("fine")], []))
    runs = [run_start(workflow=workflow, inputs=i)[0] for i in ({}, {}, {"flaky": True}, {"fail": True})]
    drain()
    now = timezone.now()
    for run, seconds in zip(runs[:3], (10, 20, 30), strict=True):
        Run.objects.filter(pk=run.pk).update(started_at=now - timedelta(minutes=5),
                                             finished_at=now - timedelta(minutes=5) + timedelta(seconds=seconds))

    ui.goto(f"{ui.base}/workflows/")
    ui.get_by_role("link", name="Analytics of analytics-e2e").click()
    ui.wait_for_url(f"{ui.base}/workflows/analytics-e2e/")
    expect(ui.locator('[data-figure="success-rate"] dd').first).to_have_text("75%")
    expect(ui.locator('[data-figure="success-rate"]')).to_contain_text("3 succeeded of 4 finished")
    expect(ui.locator('[data-figure="p50"] dd').first).to_have_text("20.0 s")
    expect(ui.locator('[data-figure="p95"] dd').first).to_have_text("29.0 s")
    runs_chart = ui.locator('[data-chart="runs-chart"]')
    expect(runs_chart.locator('rect[data-kind="failed"]')).to_have_attribute("data-value", "1")
    expect(runs_chart.locator('rect[data-kind="other"]')).to_have_attribute("data-value", "3")
    expect(runs_chart).to_contain_text("Failed (hatched)")  # the legend: outcome is not colour alone
    # Retries: flaky's second attempt and the failing run's second attempt.
    expect(ui.locator('[data-chart="retries-chart"] rect[data-kind="retries"]')).to_have_attribute("data-value", "2")
    row = ui.locator('tr[data-failing-node="work"]')
    expect(row.locator("td")).to_have_text(["work", "1", "3", "6", "ValueError"])
    screenshot(ui, "workflow-analytics")

    ui.select_option("#days", "1")
    ui.wait_for_url(f"{ui.base}/workflows/analytics-e2e/?days=1")
    expect(ui.get_by_text("per hour", exact=False).first).to_be_visible()


@pytest.mark.workers
def test_running_step_logs_stream_into_the_drawer(ui, workers, tmp_path):
    release = tmp_path / "release"
    workflow, _, _ = workflow_save(definition=definition("logs-e2e", [
        node("slow", "obs.wait_for_file", kwargs={"path": str(release)})], []))
    run, _ = run_start(workflow=workflow, inputs={})
    workers.start()
    ui.goto(f"{ui.base}/runs/{run.pk}/steps/slow/")
    drawer = ui.locator('[data-drawer-node="slow"]')
    drawer.get_by_role("tab", name="Logs").click()
    node_el = ui.locator('.runview [data-node-id="slow"].wnode')
    expect(node_el).to_have_attribute("data-status", "running", timeout=30_000)
    live = drawer.locator('[data-live-log="1"]')
    # The first lines arrive while the step still runs.
    expect(live.locator("pre.logs")).to_contain_text("still waiting for", timeout=10_000)
    expect(live).to_have_attribute("data-streaming", "true")
    expect(node_el).to_have_attribute("data-status", "running")
    # Who holds the running step's lease, its last heartbeat, and the lease's countdown.
    expect(drawer.locator(".lease")).to_have_text(re.compile(
        r"Held by \S+:\d+ · last heartbeat \d+ s ago · lease (expires in \d+ s|expired; recovery will retry it)"))
    screenshot(ui, "drawer-live-logs")

    release.write_text("go")
    expect(live.locator("pre.logs")).to_contain_text("released", timeout=15_000)
    expect(node_el).to_have_attribute("data-status", "succeeded")
    expect(live).to_have_attribute("data-streaming", "false")
    text = live.locator("pre.logs").inner_text()
    assert text.index("started; waiting") < text.index("still waiting for") < text.index("released")

    # The search box finds lines across the run.
    drawer.get_by_label("Search this run's logs").fill("RELEASED")
    expect(drawer.locator('[data-hit-node="slow"]')).to_have_count(1)
    expect(drawer.locator('[data-hit-node="slow"]')).to_contain_text("released")

    # Overview: the config as the node received it, beside the run inputs.
    drawer.get_by_role("tab", name="Overview").click()
    expect(drawer.locator('[data-inputs="slow"]')).to_contain_text(str(release))
    expect(drawer.locator('[data-inputs="slow"]')).to_contain_text("None: this step has no upstream steps.")
