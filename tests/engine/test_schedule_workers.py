"""Schedules fired by real ``runworkers`` processes: two of them racing over 1,000 fire times, catch-up after
the workers were away (and after they were stopped for three intervals, under each policy), Berlin's
daylight-saving days, buffered fires and a backfill run one after another."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from engine.models import Run, Schedule, ScheduleFire
from engine.services.schedules import schedule_backfill, schedule_create
from engine.services.workflows import workflow_save
from tests.conftest import Workers, definition, node, wait_for

pytestmark = [pytest.mark.workers, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def wf():
    return workflow_save(definition=definition("scheduled", [node("a")], []))[0]


def runs_of(schedule) -> list[Run]:
    return list(Run.objects.filter(trigger__schedule=schedule.pk))


def test_two_worker_processes_fire_1000_times_once_each(wf, workers, worker_env):
    start = timezone.now().replace(microsecond=0) - timedelta(seconds=1000)
    s = schedule_create(workflow=wf.slug, interval_s=1, start_at=start, end_at=start + timedelta(seconds=999),
                        catchup_window_s=7200, overlap="allow_all")
    other = Workers(worker_env)
    try:
        workers.start(queues="fast")
        other.start(queues="fast", recovery=False)
        wait_for(lambda: Schedule.objects.get(pk=s.pk).next_fire_at is None, timeout=300, interval=0.5,
                 message="every fire time handled")
    finally:
        other.stop()
    runs = runs_of(s)
    assert len(runs) == 1000
    assert len({r.trigger["scheduled_for"] for r in runs}) == 1000
    assert ScheduleFire.objects.filter(schedule=s, status="started").count() == 1000
    assert Schedule.objects.get(pk=s.pk).missed_count == 0


def test_catch_up_dst_and_buffered_fires_on_real_workers(wf, workers):
    now = timezone.now()
    # The workers were away for three intervals: fire times 150, 90 and 30 s ago. With a 75 s window, the last
    # fires (the workers take well under 45 s to start) and the two before are missed.
    narrow = schedule_create(workflow=wf.slug, interval_s=60, start_at=now - timedelta(seconds=150),
                             end_at=now, catchup_window_s=75, overlap="allow_all")
    wide = schedule_create(workflow=wf.slug, interval_s=60, start_at=now - timedelta(seconds=150),
                           end_at=now, catchup_window_s=3600, overlap="buffer_all")
    berlin = [schedule_create(workflow=wf.slug, cron="30 2 * * *", timezone="Europe/Berlin",
                              start_at=datetime.fromisoformat(a), end_at=datetime.fromisoformat(b),
                              catchup_window_s=366 * 86400, overlap="allow_all")
              for a, b in [("2026-03-28T12:00:00+01:00", "2026-03-30T00:00:00+02:00"),
                           ("2026-10-24T12:00:00+02:00", "2026-10-26T00:00:00+01:00")]]
    # starting in 2099: only the backfill fires now
    backfilled = schedule_create(workflow=wf.slug, cron="* * * * *", start_at=datetime(2099, 1, 1, tzinfo=UTC))
    counts = schedule_backfill(schedule_id=backfilled.pk, start=datetime(2026, 6, 1, tzinfo=UTC),
                               end=datetime(2026, 6, 1, 0, 19, tzinfo=UTC))  # buffer_all: one after another
    assert counts["fire_times"] == 20 and counts["started"] == 1 and counts["buffered"] == 19

    workers.start()
    done = lambda s: len([r for r in runs_of(s) if r.status == "succeeded"])  # noqa: E731
    wait_for(lambda: done(wide) >= 3 and done(narrow) >= 1 and done(backfilled) >= 20
             and all(done(b) >= 1 for b in berlin), timeout=240, interval=0.3, message="every run finished")
    assert (done(wide), done(narrow), done(backfilled), [done(b) for b in berlin]) == (3, 1, 20, [1, 1])

    narrow.refresh_from_db()
    assert narrow.missed_count == 2
    assert [r.trigger["scheduled_for"] for r in runs_of(narrow)] == [(now - timedelta(seconds=30)).isoformat()]
    assert Schedule.objects.get(pk=wide.pk).missed_count == 0
    # buffer_all: the three fires ran one after another, never two at once
    wide_runs = sorted(runs_of(wide), key=lambda r: r.started_at)
    assert all(a.finished_at <= b.started_at for a, b in zip(wide_runs, wide_runs[1:], strict=False))
    back_runs = sorted(runs_of(backfilled), key=lambda r: r.started_at)
    assert [r.trigger["scheduled_for"] for r in back_runs] == [
        datetime(2026, 6, 1, 0, m, tzinfo=UTC).isoformat() for m in range(20)]
    assert all(a.finished_at <= b.started_at for a, b in zip(back_runs, back_runs[1:], strict=False))
    assert [r.trigger["scheduled_for"] for b in berlin for r in runs_of(b)] == [
        "2026-03-29T01:30:00+00:00", "2026-10-25T00:30:00+00:00"]


def test_workers_stopped_for_three_intervals_catch_up_as_each_policy_says(wf, workers):
    """Real workers fire 8-second schedules, are stopped for three intervals, then started again. The fire times
    that passed meanwhile are found at once: with a wide catch-up window, allow_all starts them all, skip starts
    the first and skips the others (its run is going), buffer_all starts them one after another; with a window
    shorter than an interval, the older ones are counted as missed, never fired."""
    interval, window = 8, 7
    start = timezone.now().replace(microsecond=0) + timedelta(seconds=2)
    made = {name: schedule_create(workflow=wf.slug, interval_s=interval, start_at=start, overlap=overlap,
                                  catchup_window_s=catchup)
            for name, overlap, catchup in [("every", "allow_all", 3600), ("skipping", "skip", 3600),
                                           ("buffering", "buffer_all", 3600), ("narrow", "allow_all", window)]}
    ids = [s.pk for s in made.values()]

    def settled_with_time_to_stop():
        started = ScheduleFire.objects.filter(schedule_id__in=ids, status="started")
        if started.values("schedule").distinct().count() < len(ids):
            return False
        if Run.objects.filter(trigger__schedule__in=ids).exclude(status="succeeded").exists():
            return False
        upcoming = min(s.next_fire_at for s in Schedule.objects.filter(pk__in=ids))
        return (upcoming - timezone.now()).total_seconds() >= 5

    workers.start()
    wait_for(settled_with_time_to_stop, timeout=120, interval=0.2, message="a fire of each schedule, its run done")
    workers.stop()
    stopped_at = timezone.now()
    assert not Run.objects.filter(trigger__schedule__in=ids).exclude(status="succeeded").exists()
    time.sleep(3 * interval)
    restarted_at = timezone.now()
    workers.start()

    def fires(name):
        return list(ScheduleFire.objects.filter(schedule=made[name]).order_by("fire_time"))

    def while_stopped(name):
        return [f for f in fires(name) if stopped_at < f.fire_time <= restarted_at]

    # every fire time up to now has been handled, each schedule's run finished
    wait_for(lambda: all(Schedule.objects.get(pk=pk).next_fire_at > timezone.now() + timedelta(seconds=1)
                         for pk in ids) and not ScheduleFire.objects.filter(schedule_id__in=ids,
                                                                             status="buffered").exists()
             and not Run.objects.filter(trigger__schedule__in=ids).exclude(status="succeeded").exists(),
             timeout=180, interval=0.3, message="the catch-up handled and its runs done")

    every = fires("every")
    assert [f.fire_time for f in every] == [start + timedelta(seconds=interval * i) for i in range(len(every))]
    assert {f.status for f in every} == {"started"} and Schedule.objects.get(pk=made["every"].pk).missed_count == 0
    caught_up = while_stopped("every")
    assert len(caught_up) >= 3 and all(f.created_at >= restarted_at for f in caught_up)

    skipped = while_stopped("skipping")
    assert [f.fire_time for f in skipped] == [f.fire_time for f in caught_up]
    assert [f.status for f in skipped] == ["started"] + ["skipped"] * (len(skipped) - 1)

    buffered = while_stopped("buffering")
    assert [f.fire_time for f in buffered] == [f.fire_time for f in caught_up]
    assert {f.status for f in buffered} == {"started"}
    runs = sorted((f.run for f in buffered), key=lambda r: r.started_at)
    assert all(a.finished_at <= b.started_at for a, b in zip(runs, runs[1:], strict=False))

    # narrow: a fire time more than 7 s old when found is missed, counted, never fired; the missed ones are the
    # oldest after the stop (at least the two that were 8 and 16 s old when the workers came back)
    narrow = Schedule.objects.get(pk=made["narrow"].pk)
    handled = {f.fire_time for f in fires("narrow")}
    expected = [start + timedelta(seconds=interval * i) for i in range(1000)
                if start + timedelta(seconds=interval * i) < narrow.next_fire_at]
    after_stop = [t for t in expected if t > stopped_at]
    missed = [t for t in expected if t not in handled]
    assert len(missed) >= 2 and narrow.missed_count == len(missed)
    assert missed == after_stop[:len(missed)]
    assert all(t not in handled for t in after_stop if (restarted_at - t).total_seconds() > window)
