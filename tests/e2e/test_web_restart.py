"""The web server process killed and started again (same port) while browsers watch a run that workers
keep moving: the pages say they are reconnecting, then catch up from the event log without a reload, and
the run view ends on the database's state with every event applied once."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest
from playwright.sync_api import expect

from engine.models import Event, Run, StepRun
from engine.operations.webserver import WebServer
from engine.services.scheduler import run_start
from engine.services.workflows import workflow_save
from tests.conftest import REPO, chain, node, wait_for
from tests.e2e.conftest import PASSWORD, _ensure_frontend_built, screenshot

pytestmark = [pytest.mark.e2e, pytest.mark.workers, pytest.mark.chaos, pytest.mark.django_db(transaction=True)]

STEPS = 24
# What a browser logs while its server is away: refused websocket connections and fetches.
OFFLINE_NOISE = ("WebSocket connection to", "ERR_CONNECTION_REFUSED", "Failed to load resource", "Failed to fetch")


@pytest.fixture
def server(server_env, tmp_path):
    _ensure_frontend_built()
    subprocess.run([sys.executable, "manage.py", "collectstatic", "--noinput", "-v0"], cwd=REPO, env=server_env,
                   check=True)
    s = WebServer(server_env, tmp_path / "daphne.log").start()
    yield s
    s.stop()


def succeeded(run_id) -> int:
    return StepRun.objects.filter(run_id=run_id, status="succeeded").count()


def test_pages_reconnect_and_catch_up_after_the_web_server_restarts(browser, server, e2e_user, workers):
    wf = workflow_save(definition=chain("web-restart", STEPS, lambda i: node(
        f"s{i}", "tests.sleep", kwargs={"seconds": 0.8})))[0]
    run, _ = run_start(workflow=wf, inputs={})
    context = browser.new_context(viewport={"width": 1600, "height": 1000})
    errors: list[str] = []
    page, runs_page = context.new_page(), context.new_page()
    for p in (page, runs_page):
        p.set_default_timeout(15_000)
        p.on("console", lambda msg: msg.type == "error" and errors.append(msg.text))
        p.on("pageerror", lambda exc: errors.append(f"pageerror: {exc}"))
    page.goto(server.url + "/accounts/login/")
    page.fill("input[name=username]", e2e_user.username)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(server.url + "/")

    page.goto(f"{server.url}/runs/{run.pk}/")
    view = page.locator(".runview")
    expect(view).to_have_attribute("data-live", "true")
    page.evaluate("window.sameDocument = true")  # gone if the page were reloaded
    runs_page.goto(f"{server.url}/runs/")
    expect(runs_page.locator("#live")).to_have_attribute("data-state", "live")
    row = runs_page.locator(f'tr[data-run-id="{run.pk}"] .run-status')
    expect(row).to_contain_text("Running")

    workers.start()
    expect(page.locator('.runview [data-node-id="s2"].wnode')).to_have_attribute("data-status", "succeeded",
                                                                                timeout=60_000)
    server.kill()
    killed_seq = Run.objects.get(pk=run.pk).last_seq
    # Both pages say they are not live any more, and never pass what they show off as current.
    expect(view).to_have_attribute("data-live", "false")
    expect(page.locator(".banner[data-connection=reconnecting]")).to_contain_text("Reconnecting")
    expect(runs_page.locator("#live")).to_have_attribute("data-state", "reconnecting")
    screenshot(page, "web-restart-reconnecting")
    # The workers go on while the web server is away.
    before = succeeded(run.pk)
    wait_for(lambda: succeeded(run.pk) >= before + 3, timeout=60, message="three steps to finish while away")
    assert view.get_attribute("data-live") == "false"
    missed = Run.objects.get(pk=run.pk).last_seq - killed_seq
    server.start()
    restarted = time.monotonic()
    expect(view).to_have_attribute("data-live", "true", timeout=30_000)
    reconnect_s = time.monotonic() - restarted
    still_running = Run.objects.get(pk=run.pk).status == "running"

    wait_for(lambda: Run.objects.get(pk=run.pk).status == "succeeded", timeout=120, message="the run to succeed")
    expect(view).to_have_attribute("data-run-status", "succeeded", timeout=30_000)
    steps = dict(StepRun.objects.filter(run=run).values_list("node_id", "status"))
    assert set(steps.values()) == {"succeeded"}
    for node_id, status in steps.items():
        expect(page.locator(f'.runview [data-node-id="{node_id}"].wnode')).to_have_attribute("data-status", status)
    assert page.evaluate("window.sameDocument") is True, "the page was reloaded"

    # Every event after the first snapshot was applied exactly once, in seq order, and is the database's.
    run.refresh_from_db()
    shown = page.evaluate("window.weft.store.log.map(e => [e.seq, e.type, e.node_id || ''])")
    seqs = [s for s, _, _ in shown]
    assert seqs == list(range(seqs[0], run.last_seq + 1)), seqs
    assert seqs[0] <= killed_seq < killed_seq + missed <= seqs[-1]  # including everything committed while away
    db = list(Event.objects.filter(run=run, seq__gte=seqs[0]).order_by("seq").values_list("seq", "type", "node_id"))
    assert [tuple(e) for e in shown] == db
    store_steps = page.evaluate(
        "Object.fromEntries(Object.values(window.weft.store.steps).map(s => [s.node_id, [s.status, s.attempt]]))")
    assert store_steps == {n: [s, a] for n, s, a in StepRun.objects.filter(run=run).values_list(
        "node_id", "status", "attempt")}
    assert page.evaluate("window.weft.store.lastSeq") == run.last_seq

    # The run list caught up too, without a reload.
    expect(runs_page.locator("#live")).to_have_attribute("data-state", "live", timeout=30_000)
    expect(row).to_contain_text("Succeeded")
    screenshot(page, "web-restart-caught-up")
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute("SELECT count(*) FROM channels_postgres_groupchannel")
        memberships = cur.fetchone()[0]
    print(f"\nweb restart: {memberships} channel-group memberships for 2 open sockets; {missed} events "
          f"committed while the server was away, page live again "
          f"{reconnect_s:.1f} s after the restart (run still running then: {still_running}), "
          f"{len(seqs)} events applied once each")
    unexpected = [e for e in errors if not any(f in e for f in OFFLINE_NOISE)]
    assert unexpected == []
    context.close()
