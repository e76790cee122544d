"""Retention: `prune` deletes old finished runs with everything of theirs, in batches that never make the hot path
wait, and touches nothing else."""

from __future__ import annotations

import threading
from datetime import timedelta

import psycopg
import pytest
from channels_postgres.models import GroupChannel
from django.core.management import CommandError, call_command
from django.db import connection
from django.utils import timezone
from django_q.models import OrmQ

from engine.core.events import postgres_group_key, run_group
from engine.core.registry import task
from engine.models import Attempt, Event, JournalEntry, Run, StepRun
from engine.services import retention
from engine.services.retention import DailyRetention, parse_age, prunable, prune
from engine.services.scheduler import run_start
from engine.services.workflows import workflow_save
from tests.conftest import definition, node, test_database_url

pytestmark = pytest.mark.django_db
commits = pytest.mark.django_db(transaction=True)


@task(name="tests.retention_journaled")
def journaled(ctx):
    return {"v": ctx.step("lookup", lambda: 7, safe_to_repeat=True)}


def save(slug="keep"):
    return workflow_save(definition=definition(slug, [node("a", "tests.retention_journaled"), node("b")],
                                               [("a", "b")]))[0]


def finished_run(drain, workflow, *, days_ago: float) -> Run:
    run, _ = run_start(workflow=workflow)
    drain()
    run.refresh_from_db()
    assert run.status == "succeeded"
    Run.objects.filter(pk=run.pk).update(finished_at=timezone.now() - timedelta(days=days_ago))
    return run


def belongings(run) -> dict:
    steps = StepRun.objects.filter(run=run)
    return {"steps": steps.count(), "attempts": Attempt.objects.filter(step__run=run).count(),
            "events": Event.objects.filter(run=run).count(),
            "journal": JournalEntry.objects.filter(step__run=run).count()}


def test_prune_deletes_old_finished_runs_with_everything_of_theirs_and_nothing_else(drain):
    workflow = save()
    old = finished_run(drain, workflow, days_ago=40)
    young = finished_run(drain, workflow, days_ago=5)
    still_going, _ = run_start(workflow=workflow)  # running, however old
    Run.objects.filter(pk=still_going.pk).update(created_at=timezone.now() - timedelta(days=90))
    assert belongings(old) == {"steps": 2, "attempts": 2, "journal": 1, "events": belongings(old)["events"]}
    # What the run left outside its own tables: a stale broker message, a socket's membership of its group.
    stale = OrmQ.objects.create(key="default", payload="x", lock=timezone.now())
    StepRun.objects.filter(run=old, node_id="b").update(broker_msg_id=stale.pk)
    layer_key = postgres_group_key(prefix="weft", group=run_group(str(old.pk)))
    GroupChannel.objects.create(group_key=layer_key, channel="weft.dead!socket")
    kept_membership = GroupChannel.objects.create(group_key=postgres_group_key(prefix="weft",
                                                  group=run_group(str(young.pk))), channel="weft.live!socket")
    original = retention._group_prefix
    retention._group_prefix = lambda: postgres_group_key(prefix="weft", group=run_group(""))
    try:
        dry = prunable(older_than=timedelta(days=30))
        assert dry.as_dict() == {"runs": 1, "steps": 2, "attempts": 2, "events": belongings(old)["events"],
                                 "journal_entries": 1}
        assert Run.objects.filter(pk=old.pk).exists()  # a dry run deletes nothing
        done = prune(older_than=timedelta(days=30))
    finally:
        retention._group_prefix = original
    assert done.as_dict() == dry.as_dict()
    assert not Run.objects.filter(pk=old.pk).exists()
    assert belongings(old) == {"steps": 0, "attempts": 0, "events": 0, "journal": 0}
    assert not OrmQ.objects.filter(pk=stale.pk).exists()
    assert not GroupChannel.objects.filter(group_key=layer_key).exists()
    assert GroupChannel.objects.filter(pk=kept_membership.pk).exists()
    assert set(Run.objects.values_list("pk", flat=True)) == {young.pk, still_going.pk}
    assert belongings(young)["steps"] == 2 and belongings(young)["journal"] == 1
    assert prune(older_than=timedelta(days=30)).runs == 0


def test_prune_keeps_a_parent_whose_child_still_runs_and_unlinks_a_younger_finished_child(drain):
    workflow = save()
    parent = finished_run(drain, workflow, days_ago=40)
    other_parent = finished_run(drain, workflow, days_ago=40)
    finished_child = finished_run(drain, workflow, days_ago=1)
    Run.objects.filter(pk=finished_child.pk).update(parent_step=StepRun.objects.get(run=other_parent, node_id="a"))
    running_child, _ = run_start(workflow=workflow)  # not drained: still running
    Run.objects.filter(pk=running_child.pk).update(parent_step=StepRun.objects.get(run=parent, node_id="a"))
    assert prune(older_than=timedelta(days=30)).runs == 1
    assert Run.objects.filter(pk=parent.pk).exists()
    assert not Run.objects.filter(pk=other_parent.pk).exists()
    finished_child.refresh_from_db()
    assert finished_child.parent_step_id is None


def test_prune_of_one_workflow_and_an_unknown_one(drain):
    one, two = save("one"), save("two")
    a = finished_run(drain, one, days_ago=40)
    b = finished_run(drain, two, days_ago=40)
    assert prune(older_than=timedelta(days=30), workflow="two").runs == 1
    assert Run.objects.filter(pk=a.pk).exists() and not Run.objects.filter(pk=b.pk).exists()
    with pytest.raises(CommandError, match="workflow 'nope' does not exist"):
        call_command("prune", "--older-than", "30d", "--workflow", "nope")


def test_every_table_that_points_at_a_run_or_a_step_is_pruned_too():
    """A table added later with a foreign key to runs or steps must be handled by prune_batch (or its rows would
    stop the prune at commit): this lists them from the database's own constraints."""
    with connection.cursor() as cur:
        cur.execute("""SELECT conrelid::regclass::text, confrelid::regclass::text FROM pg_constraint
                       WHERE contype = 'f' AND confrelid::regclass::text IN ('engine_run', 'engine_steprun')""")
        pointing = {(table, target) for table, target in cur.fetchall()}
    sql = retention.SQL["prune_batch"].sql
    for table, target in pointing:
        assert f"FROM {table} WHERE" in sql or f"UPDATE {table} SET" in sql, (table, target)
    assert ("engine_attempt", "engine_steprun") in pointing and ("engine_run", "engine_steprun") in pointing


def test_the_command_counts_deletes_and_refuses_a_bad_age(drain, capsys):
    workflow = save()
    finished_run(drain, workflow, days_ago=3)
    call_command("prune", "--older-than", "2d", "--dry-run")
    assert "would delete 1 runs, 2 steps, 2 attempts" in capsys.readouterr().out
    assert Run.objects.count() == 1
    call_command("prune", "--older-than", "48h")
    assert "deleted 1 runs, 2 steps" in capsys.readouterr().out
    assert Run.objects.count() == 0
    with pytest.raises(CommandError, match="--older-than: 'a month' is not an age") as caught:
        call_command("prune", "--older-than", "a month")
    assert caught.value.returncode == 2


def test_ages():
    assert parse_age("30d") == parse_age("30") == timedelta(days=30)
    assert parse_age("12h") == timedelta(hours=12)
    assert parse_age("90m") == timedelta(minutes=90)
    assert parse_age("3600s") == timedelta(hours=1)
    for bad in ("", "-1d", "1w", "1.5d"):
        with pytest.raises(ValueError):
            parse_age(bad)


def test_the_daily_retention_prunes_when_its_leader_starts_then_once_a_day(drain, settings):
    workflow = save()
    finished_run(drain, workflow, days_ago=40)
    now = [1000.0]
    daily = DailyRetention(clock=lambda: now[0])
    settings.WEFT_RETENTION_DAYS = 0
    daily.step()
    assert Run.objects.count() == 1  # 0 keeps everything
    settings.WEFT_RETENTION_DAYS = 30
    assert daily.step() == 1 and daily.step() == 0
    assert Run.objects.count() == 0
    finished_run(drain, workflow, days_ago=40)
    now[0] += 86399
    assert daily.step() == 0 and Run.objects.count() == 1  # not yet a day
    now[0] += 2
    assert daily.step() == 1 and Run.objects.count() == 0


@commits
def test_a_batch_that_meets_a_lock_gives_up_in_100_ms_and_the_prune_finishes_once_it_is_released(drain):
    workflow = save()
    runs = [finished_run(drain, workflow, days_ago=40) for _ in range(3)]
    held_step = StepRun.objects.filter(run=runs[0]).order_by("id").first()
    done = {}
    with psycopg.connect(test_database_url(), autocommit=False) as holder:
        holder.execute("SELECT 1 FROM engine_steprun WHERE id = %s FOR UPDATE", [held_step.pk])
        # One batch wants every old run, the locked step's among them: it waits at most 100 ms, then deletes nothing.
        pruner = retention.Pruner(older_than=timedelta(days=30))
        assert pruner.step() == 0
        assert Run.objects.count() == 3
        worker = threading.Thread(target=lambda: done.update(total=prune(older_than=timedelta(days=30))))
        worker.start()
        worker.join(0.5)
        assert worker.is_alive()  # still trying while the lock is held
        holder.rollback()
    worker.join(30)
    assert not worker.is_alive() and done["total"].runs == 3
    assert Run.objects.count() == 0


@commits
def test_a_prune_never_makes_the_hot_path_wait_100_ms(drain):
    """Thousands of old runs are pruned while another connection, with lock_timeout = 100 ms, starts runs, locks
    and updates live run and step rows and writes events the way the workers do: none of it times out."""
    workflow = save()
    run, _ = run_start(workflow=workflow)
    drain()
    with connection.cursor() as cur:  # 3,000 copies of a finished run, finished 40 days ago
        cur.execute("""
            WITH src AS (SELECT * FROM engine_run WHERE id = %(run)s),
            r AS (INSERT INTO engine_run (id, workflow_id, version_id, status, inputs, outputs, error,
                      idempotency_key, request_hash, unfinished_steps, last_seq, parent_step_id, created_by_id,
                      trigger, created_at, started_at, finished_at)
                  SELECT gen_random_uuid(), workflow_id, version_id, status, inputs, outputs, error, NULL,
                      request_hash, 0, last_seq, NULL, NULL, trigger, now() - interval '41 days',
                      now() - interval '41 days', now() - interval '40 days'
                  FROM src, generate_series(1, 3000) RETURNING id)
            INSERT INTO engine_steprun (run_id, node_id, node_type, queue, status, attempt, generation,
                remaining_upstream, upstream_succeeded, upstream_failed, upstream_skipped, error, waiting_reason,
                worker)
            SELECT r.id, n, 'task', 'default', 'succeeded', 1, 0, 0, 0, 0, 0, '', '', ''
            FROM r, unnest(ARRAY['a', 'b', 'c']) AS n""", {"run": run.pk})
        cur.execute("""INSERT INTO engine_event (run_id, seq, type, node_id, payload, actor, created_at)
                       SELECT s.run_id, row_number() OVER (PARTITION BY s.run_id ORDER BY s.id), 'step.succeeded',
                           s.node_id, '{}', '', now()
                       FROM engine_steprun s JOIN engine_run r ON r.id = s.run_id
                       WHERE r.finished_at < now() - interval '30 days'""")
    stop = threading.Event()
    failures, rounds = [], [0]

    def hot_path():
        with psycopg.connect(test_database_url(), autocommit=True) as conn:
            conn.execute("SET lock_timeout = '100ms'")
            while not stop.is_set():
                try:
                    with conn.transaction():
                        conn.execute("SELECT 1 FROM engine_run WHERE id = %s FOR NO KEY UPDATE", [run.pk])
                        conn.execute("UPDATE engine_steprun SET heartbeat_at = now() WHERE run_id = %s", [run.pk])
                        conn.execute("UPDATE engine_run SET last_seq = last_seq + 1 WHERE id = %s", [run.pk])
                        conn.execute("""INSERT INTO engine_event (run_id, seq, type, node_id, payload, actor,
                                            created_at)
                                        SELECT id, last_seq, 'hot', '', '{}', '', now() FROM engine_run
                                        WHERE id = %s""", [run.pk])
                    rounds[0] += 1
                except psycopg.errors.LockNotAvailable as exc:
                    failures.append(str(exc))

    writer = threading.Thread(target=hot_path)
    writer.start()
    try:
        total = prune(older_than=timedelta(days=30))
    finally:
        stop.set()
        writer.join(30)
    assert total.runs == 3000 and total.steps == 9000
    assert failures == [] and rounds[0] > 0
    assert Run.objects.filter(pk=run.pk).exists()
