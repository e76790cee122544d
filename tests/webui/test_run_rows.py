"""The runs page's rows: what each row shows, and the SQL statements of a page (the same for 3 runs as for 100)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from engine.models import Run
from engine.services.scheduler import run_start
from engine.services.workflows import workflow_save
from tests.conftest import chain
from tests.webui.conftest import make_user

pytestmark = pytest.mark.django_db

CREATED = datetime(2026, 3, 1, 12, 34, 56, 789000, tzinfo=UTC)
FINISHED = datetime(2026, 3, 1, 12, 40, 1, tzinfo=UTC)


@pytest.fixture
def viewer_client(client):
    client.force_login(make_user("viewer", "viewer"))
    return client


def test_run_rows_show_links_status_times_in_the_current_zone_trigger_and_creator(viewer_client, settings):
    settings.TIME_ZONE = "Europe/Berlin"
    wf = workflow_save(definition={**chain("rows-a", 2), "concurrency": {"key": "{{ inputs.user }}", "limit": 1}})[0]
    creator = make_user("o'neil&co")
    running, _ = run_start(workflow=wf, inputs={"user": "ada"}, actor=creator, trigger={"kind": "webhook"})
    waiting, _ = run_start(workflow=wf, inputs={"user": "ada"}, trigger={"kind": "schedule"})
    done, _ = run_start(workflow=wf, inputs={"user": "bob"})
    untriggered, _ = run_start(workflow=wf, inputs={"user": "cy"})
    Run.objects.update(created_at=CREATED)
    Run.objects.filter(pk=done.pk).update(status="failed", finished_at=FINISHED)
    Run.objects.filter(pk=untriggered.pk).update(trigger={})

    def row(run, status, label, icon, *, waiting="", finished="—", trigger, by="—"):
        return (f'<tr data-run-id="{run.pk}">\n'
                f'  <td><a href="/runs/{run.pk}/"><code>{str(run.pk)[-8:]}</code></a></td>\n'
                f'  <td><a href="/workflows/rows-a/edit/">rows-a</a> <span class="muted">v1</span></td>\n'
                f'  <td class="run-status"><span class="badge status-{status}" data-status="{status}">'
                f'<span aria-hidden="true">{icon}</span> {label}</span>{waiting}</td>\n'
                f'  <td><time datetime="2026-03-01T12:34:56.789000+00:00">2026-03-01 13:34:56</time></td>\n'
                f'  <td class="run-finished">{finished}</td>\n'
                f'  <td class="run-trigger">{trigger}</td>\n'
                f'  <td>{by}</td>\n'
                f'</tr>\n')

    rows = viewer_client.get("/runs/", {"partial": "rows"}).content.decode()
    assert rows.count("<tr ") == 4
    assert row(running, "running", "Running", "▶", trigger="webhook", by="o&#x27;neil&amp;co") in rows
    assert row(waiting, "pending", "Pending", "○", trigger="schedule",
               waiting=' <span class="muted run-waiting" data-waiting="concurrency">'
                       'waiting for a run of key &#x27;ada&#x27; to finish</span>') in rows
    assert row(done, "failed", "Failed", "✕", trigger="manual",
               finished='<time datetime="2026-03-01T12:40:01+00:00">2026-03-01 13:40:01</time>') in rows
    assert row(untriggered, "running", "Running", "▶", trigger="—") in rows
    page = viewer_client.get("/runs/").content.decode()
    assert all(r in page for r in (row(running, "running", "Running", "▶", trigger="webhook", by="o&#x27;neil&amp;co"),
                                   row(untriggered, "running", "Running", "▶", trigger="—")))


def test_runs_page_with_no_runs_says_so(viewer_client):
    rows = viewer_client.get("/runs/", {"workflow": "nothing-here", "partial": "rows"}).content.decode()
    assert rows.strip() == '<tr class="empty"><td colspan="7" class="muted">No runs match these filters.</td></tr>'


@pytest.mark.parametrize("query", [{}, {"partial": "rows"}, {"status": "running"}, {"trigger": "api"},
                                   {"workflow": "count-0"}])
def test_runs_page_runs_as_many_statements_for_100_runs_as_for_3(viewer_client, query):
    workflows = [workflow_save(definition=chain(f"count-{i}", 2))[0] for i in range(3)]
    for wf in workflows:
        run_start(workflow=wf, inputs={}, trigger={"kind": "api"})

    def statements() -> int:
        with CaptureQueriesContext(connection) as queries:
            assert viewer_client.get("/runs/", query).status_code == 200
        return len(queries)

    few = statements()
    users = [make_user(f"starter-{i}") for i in range(10)]
    Run.objects.bulk_create(
        Run(workflow=workflows[i % 3], version=workflows[i % 3].current_version, status="running",
            created_by=users[i % 10], trigger={"kind": "api"}) for i in range(120)
    )
    page = viewer_client.get("/runs/", query).content.decode()
    assert page.count("<tr data-run-id=") == (100 if "workflow" not in query else 41)
    assert statements() == few
