"""Fire times of cron and interval schedules, across daylight-saving changes (no database)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from engine.core.firetimes import ScheduleInvalid, Spec, fire_times, fire_times_between, spec_check

BERLIN = ZoneInfo("Europe/Berlin")
ANCHOR = datetime(2026, 1, 1, tzinfo=UTC)


def cron(expr: str, tz: str = "Europe/Berlin", **kw) -> Spec:
    return Spec(cron=expr, interval_s=None, timezone=tz, anchor=ANCHOR, **kw)


def local(times) -> list[str]:
    return [t.astimezone(BERLIN).isoformat() for t in times]


def test_daily_0230_in_berlin_fires_once_on_the_spring_day_at_the_shifted_time():
    times = fire_times_between(cron("30 2 * * *"), start=datetime(2026, 3, 28, tzinfo=BERLIN),
                               end=datetime(2026, 3, 31, tzinfo=BERLIN))
    assert local(times) == ["2026-03-28T02:30:00+01:00", "2026-03-29T03:30:00+02:00", "2026-03-30T02:30:00+02:00"]


def test_daily_0230_in_berlin_fires_once_on_the_autumn_day():
    times = fire_times_between(cron("30 2 * * *"), start=datetime(2026, 10, 24, tzinfo=BERLIN),
                               end=datetime(2026, 10, 27, tzinfo=BERLIN))
    assert local(times) == ["2026-10-24T02:30:00+02:00", "2026-10-25T02:30:00+02:00", "2026-10-26T02:30:00+01:00"]


def test_autumn_day_once_even_when_searching_from_inside_the_repeated_hour():
    second_pass = datetime(2026, 10, 25, 2, 45, tzinfo=BERLIN).replace(fold=1)
    assert local([next(fire_times(cron("30 2 * * *"), after=second_pass))]) == ["2026-10-26T02:30:00+01:00"]


def test_quarter_hours_through_the_spring_gap_never_repeat_an_instant():
    times = fire_times_between(cron("*/15 * * * *"), start=datetime(2026, 3, 29, 1, 30, tzinfo=BERLIN),
                               end=datetime(2026, 3, 29, 4, 0, tzinfo=BERLIN))
    assert len(times) == len(set(times)) and times == sorted(times)
    assert local(times)[:4] == ["2026-03-29T01:30:00+01:00", "2026-03-29T01:45:00+01:00",
                                "2026-03-29T03:00:00+02:00", "2026-03-29T03:15:00+02:00"]


def test_six_fields_put_seconds_first():
    times = fire_times_between(cron("*/20 * * * * *", tz="UTC"), start=datetime(2026, 5, 1, tzinfo=UTC),
                               end=datetime(2026, 5, 1, 0, 1, tzinfo=UTC))
    assert [t.second for t in times] == [0, 20, 40, 0]


def test_an_interval_counts_from_its_anchor_and_stops_at_end_at():
    spec = Spec(cron=None, interval_s=7, timezone="UTC", anchor=ANCHOR, start_at=ANCHOR,
                end_at=ANCHOR + timedelta(seconds=21))
    assert list(fire_times(spec, after=ANCHOR - timedelta(days=1))) == [ANCHOR + timedelta(seconds=s)
                                                                       for s in (0, 7, 14, 21)]


@pytest.mark.parametrize(("spec", "field"), [
    (cron("61 * * * *"), "cron"),
    (cron("* * * *"), "cron"),
    (cron("0 0 31 2 *"), "cron"),
    (cron("* * * * *", tz="Mars/Olympus"), "timezone"),
    (Spec(cron=None, interval_s=0, timezone="UTC", anchor=ANCHOR), "interval_s"),
    (Spec(cron=None, interval_s=None, timezone="UTC", anchor=ANCHOR), "cron"),
    (Spec(cron="* * * * *", interval_s=5, timezone="UTC", anchor=ANCHOR), "cron"),
    (cron("* * * * *", start_at=ANCHOR, end_at=ANCHOR), "end_at"),
])
def test_a_wrong_field_is_named(spec, field):
    with pytest.raises(ScheduleInvalid) as caught:
        spec_check(spec)
    assert caught.value.field == field and caught.value.message.startswith(f"{field}: ")


def test_a_range_with_too_many_fire_times_is_refused_naming_end():
    with pytest.raises(ScheduleInvalid) as caught:
        fire_times_between(cron("* * * * * *", tz="UTC"), start=ANCHOR, end=ANCHOR + timedelta(days=1), limit=100)
    assert caught.value.field == "end"
