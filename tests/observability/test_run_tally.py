"""The weft_runs gauge from the run tally plus the runs since it, the fall-back to counting every run, and the
recovery loop's tally once an interval."""

from __future__ import annotations

from datetime import timedelta

import psycopg
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from psycopg import sql

from engine.models import Run, RunTally
from engine.observability import run_tally
from engine.observability.run_tally import PeriodicRunTally, run_tally_take
from engine.services.scheduler import run_start, step_retry
from engine.services.workflows import workflow_save
from engine.states import RUN_TERMINAL, RunStatus
from engine.worker.recovery import RecoveryLoop
from tests.conftest import definition, node, test_database_url, wait_for
from tests.observability.helpers import scrape, value

pytestmark = pytest.mark.django_db
commits = pytest.mark.django_db(transaction=True)

FULL_COUNT = run_tally.SQL["runs_counted_by_status"].sql
SINCE_TALLY = run_tally.SQL["runs_since_tally"].sql.split("%(as_of)s")[0]


def save(slug, nodes):
    return workflow_save(definition=definition(slug, nodes, []))[0]


def runs_gauge(client) -> dict[str, float]:
    samples = scrape(client)
    return {status: value(samples, "weft_runs", status=status) for status in RunStatus.values}


def scrape_sql(client) -> list[str]:
    with CaptureQueriesContext(connection) as captured:
        scrape(client)
    return [q["sql"] for q in captured.captured_queries]


def test_runs_finished_after_the_tally_are_counted_once_under_their_status(client, drain):
    ok, broken = save("ok", [node("a")]), save("broken", [node("a", "tests.raise", retry={"max_attempts": 1})])
    run_start(workflow=ok)
    run_start(workflow=broken)
    drain()
    run_tally_take()
    assert dict(RunTally.objects.values_list("status", "runs")) == {"succeeded": 1, "failed": 1, "cancelled": 0}
    run_start(workflow=ok)
    drain()  # succeeded after the tally
    run_start(workflow=ok)  # running: its step is queued
    runs = runs_gauge(client)
    assert runs == {"pending": 0, "running": 1, "succeeded": 2, "failed": 1, "cancelled": 0}
    assert sum(runs.values()) == Run.objects.count() == 4


def test_a_scrape_with_a_fresh_tally_adds_the_runs_since_and_counts_no_others(client, drain):
    run_start(workflow=save("ok", [node("a")]))
    drain()
    run_tally_take()
    RunTally.objects.filter(status="succeeded").update(runs=1000)  # a count only the tally has
    sql = scrape_sql(client)
    assert not [q for q in sql if FULL_COUNT in q]
    assert [q for q in sql if SINCE_TALLY in q]
    assert runs_gauge(client)["succeeded"] == 1000


@pytest.mark.parametrize("tally", ["missing", "stale", "a status missing"])
def test_without_a_fresh_tally_the_scrape_counts_every_run(client, drain, settings, tally):
    ok = save("ok", [node("a")])
    run_start(workflow=ok)
    drain()
    run_start(workflow=ok)
    expected = {"pending": 0, "running": 1, "succeeded": 1, "failed": 0, "cancelled": 0}
    if tally != "missing":
        run_tally_take()
        RunTally.objects.update(runs=1000)
    if tally == "stale":
        RunTally.objects.update(as_of=RunTally.objects.get(pk="failed").as_of
                                - timedelta(seconds=10 * settings.WEFT_RUN_TALLY_S + 1))
    if tally == "a status missing":
        RunTally.objects.filter(pk="cancelled").delete()
    assert [q for q in scrape_sql(client) if FULL_COUNT in q]
    assert runs_gauge(client) == expected


def test_a_run_retried_after_the_tally_counts_under_both_statuses_until_the_next_tally(client, drain):
    run, _ = run_start(workflow=save("broken", [node("a", "tests.raise", retry={"max_attempts": 1})]))
    drain()
    run_tally_take()
    step_retry(run_id=run.pk, node_id="a")
    assert runs_gauge(client)["failed"] == 1 and runs_gauge(client)["running"] == 1  # documented
    run_tally_take()
    assert runs_gauge(client) == {"pending": 0, "running": 1, "succeeded": 0, "failed": 0, "cancelled": 0}


def test_the_recovery_loop_takes_the_tally_once_an_interval(settings):
    settings.WEFT_RUN_TALLY_S = 60
    now = [1000.0]
    tally = PeriodicRunTally(clock=lambda: now[0])
    assert tally.step() is True
    first = RunTally.objects.get(pk="succeeded").as_of
    now[0] += 59
    assert tally.step() is False
    assert RunTally.objects.get(pk="succeeded").as_of == first
    now[0] += 1
    assert tally.step() is True
    assert RunTally.objects.get(pk="succeeded").as_of > first


@commits
def test_the_recovery_loops_leader_keeps_the_tally(settings):
    settings.WEFT_RECOVERY_INTERVAL_S = 0.05
    loop = RecoveryLoop()
    try:
        loop.start()
        wait_for(lambda: RunTally.objects.count() == len(RUN_TERMINAL), timeout=10, message="the first tally")
    finally:
        loop.stop()
        loop.join(timeout=5)


@commits
def test_a_run_finished_by_a_transaction_open_during_the_tally_is_counted_once_it_commits(client):
    """Its finished_at precedes the tally, which cannot see it: the tally's as_of is held back to when that
    transaction began, so the scrapes count it."""
    run, _ = run_start(workflow=save("ok", [node("a")]))
    with psycopg.connect(test_database_url(), autocommit=True) as other:
        # One message: the transaction begins at the statement's time, the finished_at it writes.
        other.execute(sql.SQL("BEGIN; UPDATE engine_run SET status = 'succeeded', finished_at = statement_timestamp() "
                              "WHERE id = {}").format(str(run.pk)))
        as_of = run_tally_take()
        finished_at = other.execute("SELECT finished_at FROM engine_run WHERE id = %s", [run.pk]).fetchone()[0]
        assert as_of <= finished_at
        other.execute("COMMIT")
    assert dict(RunTally.objects.values_list("status", "runs")) == {"succeeded": 0, "failed": 0, "cancelled": 0}
    runs = runs_gauge(client)
    assert runs["succeeded"] == 1 and runs["running"] == 0
    assert sum(runs.values()) == Run.objects.count() == 1
