"""The workflow page's run analytics and the step drawer's rendered inputs."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.utils import timezone

import tests.observability.tasks  # noqa: F401  (registers obs.by_input in this process)
from engine.models import Run
from engine.services.scheduler import run_start
from engine.services.workflows import workflow_save
from tests.conftest import definition, node
from tests.webui.conftest import make_user

pytestmark = pytest.mark.django_db

NO_BACKOFF = {"max_attempts": 2, "backoff_s": 0, "jitter": 0}


@pytest.fixture
def viewer_client(client):
    client.force_login(make_user("viewer", "viewer"))
    return client


@pytest.fixture
def history(drain):
    """Four succeeded runs (one after a retry) lasting 10, 20, 30 and 40 s, and two failed runs."""
    workflow, _, _ = workflow_save(definition=definition("measured", [
        node("work", "obs.by_input", retry=NO_BACKOFF), node("fine")], []))
    inputs = [{}, {}, {}, {"flaky": True}, {"fail": True}, {"fail": True}]
    runs = [run_start(workflow=workflow, inputs=i)[0] for i in inputs]
    drain()
    now = timezone.now()
    for run, seconds in zip(runs[:4], (10, 20, 30, 40), strict=True):
        Run.objects.filter(pk=run.pk).update(started_at=now - timedelta(minutes=5),
                                             finished_at=now - timedelta(minutes=5) + timedelta(seconds=seconds))
    return workflow


def figure(page: str, name: str) -> str:
    match = re.search(rf'data-figure="{name}"><dt>[^<]*</dt><dd>([^<]*)</dd>', page)
    assert match, f"no figure {name}"
    return match.group(1)


def bars(page: str, chart: str) -> list[tuple[str, int]]:
    section = page.split(f'data-chart="{chart}"', 1)[1].split("</figure>", 1)[0]
    return [(kind, int(value)) for kind, value in
            re.findall(r'<rect class="bar bar-\w+" data-kind="(\w+)" data-value="(\d+)"', section)]


def test_workflow_page_shows_success_rate_durations_charts_and_failing_nodes(viewer_client, history):
    response = viewer_client.get("/workflows/measured/")
    assert response.status_code == 200
    page = response.content.decode()
    assert figure(page, "success-rate") == "67%"
    assert "4 succeeded of 6 finished" in page
    assert figure(page, "p50") == "25.0 s"
    assert figure(page, "p95") == "38.5 s"
    assert figure(page, "runs") == "6"
    # Runs per day: today's bar is split into 4 not failed and 2 failed (hatched, and labelled).
    assert sorted(bars(page, "runs-chart")) == [("failed", 2), ("other", 4)]
    assert 'fill="url(#runs-chart-hatch)"' in page and "Failed (hatched)" in page
    assert bars(page, "retries-chart") == [("retries", 3)]
    row = re.search(r'<tr data-failing-node="work">(.*?)</tr>', page, re.S).group(1)
    assert re.findall(r"<td>(?:<code>)?([^<]+)", row) == ["work", "2", "5", "9", "ValueError"]


def test_workflow_page_period_is_hourly_for_a_day_and_ignores_bad_values(viewer_client, history):
    hourly = viewer_client.get("/workflows/measured/", {"days": "1"}).content.decode()
    assert "per hour" in hourly and sum(v for _, v in bars(hourly, "retries-chart")) == 3
    fallback = viewer_client.get("/workflows/measured/", {"days": "400"}).content.decode()
    assert '<option value="30" selected>' in fallback and "per day" in fallback


def test_workflow_without_runs_shows_no_rates(viewer_client):
    workflow_save(definition=definition("idle", [node("a")], []))
    page = viewer_client.get("/workflows/idle/").content.decode()
    assert figure(page, "success-rate") == "—" and figure(page, "p50") == "—"
    assert "No failed attempts in this period." in page
    assert bars(page, "runs-chart") == []


def test_workflow_page_needs_a_role_and_an_existing_workflow(client, viewer_client):
    assert viewer_client.get("/workflows/missing/").status_code == 404
    workflow_save(definition=definition("idle", [node("a")], []))
    client.force_login(make_user("nobody"))
    assert client.get("/workflows/idle/").status_code == 403


def test_workflow_list_links_to_the_analytics_page(viewer_client):
    workflow_save(definition=definition("linked", [node("a")], []))
    page = viewer_client.get("/workflows/").content.decode()
    assert 'href="/workflows/linked/" aria-label="Analytics of linked">Analytics</a>' in page


def test_step_inputs_render_the_config_from_upstream_outputs_and_run_inputs(viewer_client, drain):
    workflow, _, _ = workflow_save(definition=definition("rendered", [
        node("a", "tests.add", kwargs={"a": 2, "b": 3}),
        node("b", "tests.noop", kwargs={"total": "{{ nodes.a.output.sum }}", "who": "{{ inputs.name }}"}),
    ], [("a", "b")], inputs={"type": "object", "properties": {"name": {"type": "string"}}}))
    run, _ = run_start(workflow=workflow, inputs={"name": "Ada"})
    before = viewer_client.get(f"/runs/{run.pk}/steps/b/inputs/").json()
    assert before["upstream"] == [{"node_id": "a", "status": "queued", "output": None, "direct": True,
                                   "referenced": True}]
    drain()
    body = viewer_client.get(f"/runs/{run.pk}/steps/b/inputs/").json()
    assert body["rendered"]["kwargs"] == {"total": 5, "who": "Ada"}
    assert body["config"]["kwargs"]["total"] == "{{ nodes.a.output.sum }}" and body["templated"] is True
    assert body["upstream"] == [{"node_id": "a", "status": "succeeded", "output": {"sum": 5}, "direct": True,
                                 "referenced": True}]
    assert body["run_inputs"] == {"name": "Ada"} and body["render_error"] == ""
    assert viewer_client.get(f"/runs/{run.pk}/steps/nope/inputs/").status_code == 404


def test_an_items_inputs_are_its_nodes_config_rendered_with_its_item(viewer_client, drain):
    workflow = workflow_save(definition=definition("inputs-item", [
        node("source", kwargs={"xs": "{{ inputs.xs }}"}),
        {**node("each", "tests.fail_at", kwargs={"item": "{{ item }}-{{ item_index }}"}),
         "for_each": "{{ nodes.source.output.xs }}"},
    ], [("source", "each")]))[0]
    run, _ = run_start(workflow=workflow, inputs={"xs": ["a", "b", "c"]})
    drain()
    body = viewer_client.get(f"/runs/{run.pk}/steps/each%5B1%5D/inputs/").json()
    assert body["node_id"] == "each[1]" and body["render_error"] == ""
    assert body["rendered"]["kwargs"] == {"item": "b-1"}
    assert [u["node_id"] for u in body["upstream"]] == ["source"]
    assert viewer_client.get(f"/runs/{run.pk}/steps/each%5B9%5D/inputs/").status_code == 404
