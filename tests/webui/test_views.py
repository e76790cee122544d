"""Server-rendered pages: access by role, filters, duplicate/archive, and the island's props."""

from __future__ import annotations

import json
import re
from datetime import timedelta

import pytest
from django.utils import timezone

from engine.models import Run, StepRun, Workflow
from engine.services.scheduler import run_cancel, run_start
from engine.services.workflows import workflow_save
from tests.conftest import chain, node
from tests.webui.conftest import make_user

pytestmark = pytest.mark.django_db


def props_of(response) -> dict:
    page = response.content.decode()
    match = re.search(r'<script id="weft-props" type="application/json">(.*?)</script>', page, re.S)
    assert match, "page has no island props"
    return json.loads(match.group(1))


@pytest.fixture
def viewer_client(client):
    client.force_login(make_user("viewer", "viewer"))
    return client


@pytest.fixture
def designer_client(client):
    client.force_login(make_user("designer", "designer"))
    return client


@pytest.mark.parametrize("path", ["/workflows/", "/runs/", "/queues/", "/workflows/new/"])
def test_pages_need_login(client, path):
    response = client.get(path)
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


@pytest.mark.parametrize("path", ["/workflows/", "/runs/", "/queues/"])
def test_pages_need_a_role(client, path):
    client.force_login(make_user("nobody"))
    assert client.get(path).status_code == 403


def test_workflow_list_searches_and_shows_last_run_status_and_counts(viewer_client):
    wf = workflow_save(definition=chain("alpha-flow", 2))[0]
    workflow_save(definition=chain("beta-flow", 2))
    run, _ = run_start(workflow=wf, inputs={})
    run_cancel(run_id=run.pk)
    page = viewer_client.get("/workflows/", {"q": "alpha"}).content.decode()
    assert "alpha-flow" in page and "beta-flow" not in page
    assert 'data-status="cancelled"' in page and "Cancelled" in page
    assert '?workflow=alpha-flow">1</a>' in page
    # A viewer sees no design actions.
    assert "Duplicate" not in page and "New workflow" not in page


def test_designer_duplicates_and_archives(designer_client):
    workflow_save(definition=chain("gamma", 2))
    response = designer_client.post("/workflows/gamma/duplicate/")
    assert response.status_code == 302 and response["Location"] == "/workflows/gamma-copy/edit/"
    copy = Workflow.objects.get(slug="gamma-copy").current_version.definition
    assert copy["nodes"] == Workflow.objects.get(slug="gamma").current_version.definition["nodes"]
    assert designer_client.post("/workflows/gamma/archive/").status_code == 302
    assert Workflow.objects.get(slug="gamma").archived
    assert "gamma-copy" in designer_client.get("/workflows/").content.decode()
    assert 'data-workflow="gamma"' not in designer_client.get("/workflows/").content.decode()


def test_viewer_cannot_duplicate_or_archive(viewer_client):
    workflow_save(definition=chain("delta", 2))
    assert viewer_client.post("/workflows/delta/duplicate/").status_code == 403
    assert viewer_client.post("/workflows/delta/archive/").status_code == 403
    assert not Workflow.objects.get(slug="delta").archived


def test_runs_list_filters_by_workflow_status_and_start_time_and_serves_rows(viewer_client):
    a = workflow_save(definition=chain("runs-a", 2))[0]
    b = workflow_save(definition=chain("runs-b", 2))[0]
    ra, _ = run_start(workflow=a, inputs={})
    rb, _ = run_start(workflow=b, inputs={})
    run_cancel(run_id=rb.pk)
    page = viewer_client.get("/runs/", {"workflow": "runs-a"}).content.decode()
    assert str(ra.pk) in page and str(rb.pk) not in page
    page = viewer_client.get("/runs/", {"status": "cancelled"}).content.decode()
    assert str(rb.pk) in page and str(ra.pk) not in page
    Run.objects.filter(pk=rb.pk).update(created_at=timezone.now() - timedelta(days=2))
    page = viewer_client.get("/runs/", {"since": "24h"}).content.decode()
    assert str(ra.pk) in page and str(rb.pk) not in page
    page = viewer_client.get("/runs/", {"since": "7d"}).content.decode()
    assert str(ra.pk) in page and str(rb.pk) in page
    page = viewer_client.get("/runs/", {"since": "forever"}).content.decode()  # unknown: no time filter
    assert str(ra.pk) in page and str(rb.pk) in page
    rows = viewer_client.get("/runs/", {"partial": "rows"}).content.decode()
    assert "<html" not in rows and f'data-run-id="{ra.pk}"' in rows
    assert props_of(viewer_client.get("/runs/")) == {"mode": "runs"}


def test_runs_list_filters_by_how_runs_started(viewer_client):
    wf = workflow_save(definition=chain("runs-t", 2))[0]
    started = {kind: run_start(workflow=wf, inputs={}, trigger={"kind": kind})[0]
               for kind in ("manual", "api", "schedule", "webhook", "event")}
    for kind in started:
        page = viewer_client.get("/runs/", {"trigger": kind}).content.decode()
        shown = {k for k, r in started.items() if f'data-run-id="{r.pk}"' in page}
        assert shown == {kind}, kind
        assert f'<option value="{kind}" selected>' in page
        assert f'<td class="run-trigger">{kind}</td>' in page
    rows = viewer_client.get("/runs/", {"trigger": "schedule", "partial": "rows"}).content.decode()
    assert rows.count("data-run-id=") == 1 and str(started["schedule"].pk) in rows
    page = viewer_client.get("/runs/", {"trigger": "telepathy"}).content.decode()  # unknown: no trigger filter
    assert all(str(r.pk) in page for r in started.values())


def test_queue_page_lists_configured_queues(viewer_client, settings):
    page = viewer_client.get("/queues/").content.decode()
    for name in settings.WEFT_QUEUES:
        assert f'data-queue="{name}"' in page
    assert "<html" not in viewer_client.get("/queues/", {"partial": "rows"}).content.decode()


def test_run_page_mounts_the_island_with_a_snapshot(viewer_client):
    wf = workflow_save(definition=chain("run-page", 3))[0]
    run, _ = run_start(workflow=wf, inputs={})
    props = props_of(viewer_client.get(f"/runs/{run.pk}/"))
    assert props["mode"] == "run" and props["runId"] == str(run.pk) and props["step"] is None
    snap = props["snapshot"]
    assert snap["last_seq"] == snap["run"]["last_seq"] > 0
    assert {s["node_id"]: s["status"] for s in snap["steps"]}["s1"] == "queued"
    assert props["roles"] == {"view": True, "operate": False, "design": False}
    step_props = props_of(viewer_client.get(f"/runs/{run.pk}/steps/s2/"))
    assert step_props["step"] == "s2"


HOSTILE = "</script><script>alert(1)</script> & <!--"


def test_the_run_pages_props_escape_markup_in_inputs_definitions_and_json_columns(viewer_client):
    """The run page writes its props itself (webui.snapshot.props_script), a step's waiting detail as the JSON
    text read: nothing in them can close the script element, and they read back as they were written."""
    wf = workflow_save(definition=chain("run-page-markup", 2, make=lambda i: node(f"s{i}", kwargs={"say": HOSTILE})))[0]
    run, _ = run_start(workflow=wf, inputs={"note": HOSTILE})
    StepRun.objects.filter(run=run, node_id="s2").update(waiting_detail={"why": HOSTILE, "n": [1, 2.5]})
    page = viewer_client.get(f"/runs/{run.pk}/").content.decode()
    assert "<script>alert(1)" not in page and "<!--" not in page.split('id="weft-props"')[1].split("</script>")[0]
    snap = props_of(viewer_client.get(f"/runs/{run.pk}/"))["snapshot"]
    assert snap["run"]["inputs"] == {"note": HOSTILE}
    assert snap["definition"]["nodes"][0]["config"]["kwargs"] == {"say": HOSTILE}
    steps = {s["node_id"]: s for s in snap["steps"]}
    assert steps["s2"]["waiting_detail"] == {"why": HOSTILE, "n": [1, 2.5]} and steps["s1"]["waiting_detail"] is None
    queued = StepRun.objects.get(run=run, node_id="s1").queued_at
    assert steps["s1"]["queued_at"] == queued.isoformat()


def test_a_run_waiting_for_its_concurrency_key_says_so_in_the_list_and_its_page(viewer_client):
    wf = workflow_save(definition={**chain("run-wait", 2), "concurrency": {"key": "{{ inputs.user }}", "limit": 1}})[0]
    running, _ = run_start(workflow=wf, inputs={"user": "ada"})
    waiting, _ = run_start(workflow=wf, inputs={"user": "ada"})
    rows = viewer_client.get("/runs/", {"status": "pending", "partial": "rows"}).content.decode()
    assert f'data-run-id="{waiting.pk}"' in rows and f'data-run-id="{running.pk}"' not in rows
    assert 'data-status="pending"' in rows
    assert 'data-waiting="concurrency">waiting for a run of key &#x27;ada&#x27; to finish</span>' in rows
    snap = props_of(viewer_client.get(f"/runs/{waiting.pk}/"))["snapshot"]
    assert snap["run"]["status"] == "pending" and snap["run"]["concurrency_key"] == "ada"
    assert snap["run"]["waiting"]["message"] == "waiting for a run of key 'ada' to finish"
    assert props_of(viewer_client.get(f"/runs/{running.pk}/"))["snapshot"]["run"]["waiting"] is None


def test_unknown_run_or_step_is_404(viewer_client):
    wf = workflow_save(definition=chain("run-404", 2))[0]
    run, _ = run_start(workflow=wf, inputs={})
    assert viewer_client.get("/runs/00000000-0000-0000-0000-000000000000/").status_code == 404
    assert viewer_client.get("/runs/not-a-uuid/").status_code == 404
    assert viewer_client.get(f"/runs/{run.pk}/steps/nope/").status_code == 404


def test_editor_gets_definition_with_positions_versions_and_node_types(designer_client):
    workflow_save(definition=chain("edit-me", 2), note="first")
    props = props_of(designer_client.get("/workflows/edit-me/edit/"))
    assert props["mode"] == "editor" and props["slug"] == "edit-me" and props["version"] == 1
    assert all("position" in n for n in props["definition"]["nodes"])
    assert props["versions"][0]["note"] == "first"
    assert "python" in {t["name"] for t in props["nodeTypes"]}
    assert designer_client.get("/workflows/missing/edit/").status_code == 404
    new = props_of(designer_client.get("/workflows/new/"))
    assert new["definition"] is None and new["slug"] is None


def test_every_status_badge_has_an_icon_and_a_text_label():
    from engine.states import RunStatus, StepStatus
    from webui.templatetags.weft import STATUS, status_badge

    icons = set()
    for status in set(StepStatus.values) | set(RunStatus.values):
        html = str(status_badge(status))
        icon, label = STATUS[status]
        assert f'data-status="{status}"' in html and icon in html and label in html
        icons.add(icon)
    assert len(icons) == len(STATUS)  # failed and upstream-failed (and every other pair) differ without colour
