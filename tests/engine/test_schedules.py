"""Schedules on the real database: fire times handled once, catch-up, overlap policies, buffered fires,
trigger now, backfill, pause and resume. Fires are driven by calling the schedule loop's functions; steps are
executed in-process (``drain``)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest
from django.utils import timezone

from engine.core.firetimes import ScheduleInvalid
from engine.models import Run, Schedule, ScheduleFire
from engine.services import schedule_fires
from engine.services.schedule_fires import buffered_start_next, schedule_fire_due, schedules_fire_once
from engine.services.schedules import (
    schedule_backfill,
    schedule_create,
    schedule_next_fire_times,
    schedule_pause,
    schedule_resume,
    schedule_trigger,
    schedule_update,
)
from engine.services.workflows import workflow_save
from tests.conftest import definition, node

pytestmark = pytest.mark.django_db

INPUTS_SCHEMA = {"type": "object", "properties": {"when": {"type": "string"}}, "required": ["when"]}


@pytest.fixture
def wf():
    return workflow_save(definition=definition("nightly", [node("a")], [], inputs=INPUTS_SCHEMA))[0]


def make(wf, **fields) -> Schedule:
    fields.setdefault("inputs", {"when": "{{ scheduled_for }}"})
    return schedule_create(workflow=wf.slug, **fields)


def ago(seconds: float) -> datetime:
    """A ``start_at`` that many seconds ago: its fire times since then are due, as if workers had been away."""
    return timezone.now() - timedelta(seconds=seconds)


def fire_all(schedule: Schedule) -> int:
    total = 0
    while (n := schedule_fire_due(schedule.pk)):
        total += n
    return total


def runs_of(schedule: Schedule) -> list[Run]:
    return list(Run.objects.filter(trigger__schedule=schedule.pk).order_by("trigger__scheduled_for"))


def test_create_computes_the_next_five_fire_times_in_the_time_zone(wf):
    s = make(wf, cron="30 2 * * *", timezone="Europe/Berlin")
    times = schedule_next_fire_times(s)
    assert len(times) == 5 and times == sorted(times) and times[0] > timezone.now()
    assert {t.astimezone(UTC).strftime("%M") for t in times} == {"30"}
    assert s.next_fire_at == times[0] and s.due_at == times[0]


def test_a_berlin_0230_schedule_fires_once_on_each_change_day(wf):
    berlin = "Europe/Berlin"
    for start, end, expected in [
        ("2026-03-28T00:00:00+01:00", "2026-03-30T12:00:00+02:00",
         ["2026-03-28T01:30:00+00:00", "2026-03-29T01:30:00+00:00", "2026-03-30T00:30:00+00:00"]),
        ("2026-10-24T00:00:00+02:00", "2026-10-26T12:00:00+01:00",
         ["2026-10-24T00:30:00+00:00", "2026-10-25T00:30:00+00:00", "2026-10-26T01:30:00+00:00"]),
    ]:
        s = make(wf, cron="30 2 * * *", timezone=berlin, start_at=datetime.fromisoformat(start),
                 end_at=datetime.fromisoformat(end), catchup_window_s=366 * 86400, overlap="allow_all")
        assert fire_all(s) == 3
        assert [r.trigger["scheduled_for"] for r in runs_of(s)] == expected
        assert Schedule.objects.get(pk=s.pk).next_fire_at is None  # past end_at: done


def test_runs_record_the_trigger_and_rendered_inputs(wf):
    s = make(wf, interval_s=60, start_at=ago(1))
    fire_all(s)
    (run,) = runs_of(s)
    assert run.trigger["kind"] == "schedule" and run.trigger["schedule"] == s.pk
    assert run.inputs == {"when": run.trigger["scheduled_for"]}
    assert ScheduleFire.objects.get(schedule=s).run_id == run.pk


def test_jitter_delays_when_a_fire_starts_but_not_its_scheduled_for(wf, monkeypatch):
    monkeypatch.setattr(schedule_fires, "random", SimpleNamespace(uniform=lambda low, high: high / 2))
    start = ago(10).replace(microsecond=0)
    s = make(wf, interval_s=3600, jitter_s=600, start_at=start)
    assert (s.next_fire_at, s.due_at) == (start, start + timedelta(seconds=300))
    assert schedules_fire_once() == 0 and not runs_of(s)  # due in 290 s
    Schedule.objects.filter(pk=s.pk).update(due_at=timezone.now())  # as if they had passed
    assert schedules_fire_once() == 1
    (run,) = runs_of(s)
    assert run.trigger["scheduled_for"] == start.isoformat() and run.inputs == {"when": start.isoformat()}
    s.refresh_from_db()
    hour = start + timedelta(hours=1)
    assert (s.next_fire_at, s.due_at) == (hour, hour + timedelta(seconds=300))


def test_a_fire_time_is_handled_once(wf):
    s = make(wf, interval_s=60, overlap="allow_all", start_at=ago(1))
    t = Schedule.objects.get(pk=s.pk).next_fire_at
    assert fire_all(s) == 1
    Schedule.objects.filter(pk=s.pk).update(next_fire_at=t, due_at=t)  # as if another process had not seen it
    assert fire_all(s) == 1
    assert len(runs_of(s)) == 1 and ScheduleFire.objects.filter(schedule=s).count() == 1


def test_catch_up_fires_within_the_window_and_counts_older_ones_as_missed(wf):
    s = make(wf, interval_s=10, catchup_window_s=20, overlap="allow_all", start_at=ago(35))  # 35, 25, 15, 5 s ago
    fire_all(s)
    s.refresh_from_db()
    assert s.missed_count == 2
    assert len(runs_of(s)) == 2
    assert s.next_fire_at > timezone.now()


@pytest.mark.parametrize(("policy", "started", "statuses"), [
    ("skip", 1, ["started", "skipped", "skipped"]),
    ("buffer_one", 1, ["started", "buffered", "skipped"]),
    ("buffer_all", 1, ["started", "buffered", "buffered"]),
    ("allow_all", 3, ["started", "started", "started"]),
    ("cancel_other", 3, ["started", "started", "started"]),
])
def test_overlap_policy_while_the_previous_run_is_going(wf, policy, started, statuses, drain):
    # three fire times, handled in one pass while the first run is still going
    s = make(wf, interval_s=10, catchup_window_s=60, overlap=policy, start_at=ago(25))
    fire_all(s)
    fires = list(ScheduleFire.objects.filter(schedule=s).order_by("fire_time"))
    assert [f.status for f in fires] == statuses
    runs = runs_of(s)
    assert len(runs) == started
    if policy == "cancel_other":
        assert [r.status for r in runs] == ["cancelled", "cancelled", "running"]
    drain()
    if policy.startswith("buffer"):
        assert buffered_start_next(s.pk)  # the first run finished: the oldest buffered fire starts
        assert not buffered_start_next(s.pk)  # ... and the next waits for it
        assert len(runs_of(s)) == 2
        drain()
        assert buffered_start_next(s.pk) == (policy == "buffer_all")
    assert len(runs_of(s)) == {"buffer_one": 2, "buffer_all": 3}.get(policy, started)


def test_trigger_now_starts_a_manual_run_whatever_the_overlap(wf):
    s = make(wf, interval_s=3600, overlap="skip")
    first = schedule_trigger(schedule_id=s.pk)
    second = schedule_trigger(schedule_id=s.pk)
    assert first.pk != second.pk
    assert first.trigger["manual"] is True and first.trigger["kind"] == "schedule"


def test_a_backfill_of_100_fire_times_fires_each_once(wf, drain):
    s = make(wf, interval_s=60, start_at=datetime(2026, 1, 1, tzinfo=UTC), end_at=datetime(2026, 1, 2, tzinfo=UTC))
    start, end = datetime(2026, 6, 1, tzinfo=UTC), datetime(2026, 6, 1, 1, 39, tzinfo=UTC)
    counts = schedule_backfill(schedule_id=s.pk, start=start, end=end, overlap="allow_all")
    assert counts["fire_times"] == 100 and counts["started"] == 100
    again = schedule_backfill(schedule_id=s.pk, start=start, end=end, overlap="allow_all")
    assert again["already"] == 100 and again["started"] == 0
    runs = runs_of(s)
    assert len(runs) == 100 and len({r.trigger["scheduled_for"] for r in runs}) == 100
    assert all(r.trigger["backfill"] is True for r in runs)


def test_a_buffer_all_backfill_runs_one_after_another(wf, drain):
    s = make(wf, cron="* * * * *")
    counts = schedule_backfill(schedule_id=s.pk, start=datetime(2026, 6, 1, tzinfo=UTC),
                               end=datetime(2026, 6, 1, 0, 4, tzinfo=UTC))
    assert counts == {"fire_times": 5, "started": 1, "buffered": 4, "skipped": 0, "failed": 0, "already": 0}
    for expected in range(2, 6):
        drain()
        assert schedules_fire_once() == 1
        assert len(runs_of(s)) == expected
    drain()
    assert all(r.status == "succeeded" for r in runs_of(s))


def test_pause_stops_firing_and_resume_starts_from_now_without_making_up_or_counting(wf):
    s = make(wf, interval_s=10, catchup_window_s=3600, start_at=ago(100))
    Schedule.objects.filter(pk=s.pk).update(paused=True)  # as if paused before these ten fire times came
    assert schedules_fire_once() == 0
    schedule_update(schedule_id=s.pk, interval_s=20)  # a change while paused makes none up either
    s = schedule_resume(schedule_id=s.pk)
    assert s.next_fire_at >= timezone.now() - timedelta(seconds=1)
    assert schedules_fire_once() == 0 and not runs_of(s) and s.missed_count == 0


def test_an_update_first_handles_the_fire_times_due_under_the_old_settings(wf):
    # workers away: fire times 35, 25, 15 and 5 s ago are due, not fired; a 20 s window
    s = make(wf, interval_s=10, catchup_window_s=20, overlap="allow_all", start_at=ago(35))
    due = [s.next_fire_at + timedelta(seconds=10 * i) for i in range(4)]
    s = schedule_update(schedule_id=s.pk, interval_s=3600)
    assert s.missed_count == 2
    assert [r.trigger["scheduled_for"] for r in runs_of(s)] == [t.isoformat() for t in due[2:]]
    assert s.next_fire_at == due[0] + timedelta(hours=1)  # then from now, under the new interval
    assert schedules_fire_once() == 0


def test_a_pause_first_handles_the_fire_times_already_due(wf):
    s = make(wf, interval_s=10, catchup_window_s=20, overlap="skip", start_at=ago(35))
    s = schedule_pause(schedule_id=s.pk)
    assert s.missed_count == 2 and s.paused
    assert [f.status for f in ScheduleFire.objects.filter(schedule=s).order_by("fire_time")] == ["started", "skipped"]
    s = schedule_resume(schedule_id=s.pk)
    assert s.missed_count == 2 and len(runs_of(s)) == 1


@pytest.mark.parametrize(("fields", "field"), [
    ({"cron": "not a cron"}, "cron"),
    ({"cron": "* * * * *", "timezone": "Europe/Nowhere"}, "timezone"),
    ({"interval_s": 0}, "interval_s"),
    ({"cron": "* * * * *", "interval_s": 5}, "cron"),
    ({}, "cron"),
    ({"interval_s": 5, "inputs": {"when": "{{ scheduled_for | nosuchfilter }}"}}, "inputs"),
    ({"interval_s": 5, "inputs": {"other": 1}}, "inputs"),
    ({"interval_s": 5, "overlap": "sometimes"}, "overlap"),
])
def test_bad_input_names_the_field_and_saves_nothing(wf, fields, field):
    with pytest.raises(ScheduleInvalid) as caught:
        make(wf, **fields)
    assert caught.value.field == field
    assert not Schedule.objects.exists()


def test_a_bad_update_saves_nothing(wf):
    s = make(wf, interval_s=5, catchup_window_s=60, start_at=ago(12))  # due 12, 7 and 2 s ago
    with pytest.raises(ScheduleInvalid):
        schedule_update(schedule_id=s.pk, cron="* * * * *")
    s = Schedule.objects.get(pk=s.pk)
    assert s.cron is None and s.next_fire_at < timezone.now()  # still due, for the loop
    assert not runs_of(s) and not ScheduleFire.objects.filter(schedule=s).exists()
