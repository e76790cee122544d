"""When a schedule fires: cron expressions in an IANA time zone, and fixed intervals (no Django).

A cron expression is read in the schedule's wall-clock time (5 fields, or 6 with seconds first, as
cronstrue reads it) and every fire time is a UTC instant. Across a daylight-saving change:

- a wall-clock time that does not exist (02:30 on the spring day in Europe/Berlin) fires once, at the
  shifted time (03:30 local: the same distance after the last instant before the gap);
- a wall-clock time that happens twice (02:30 on the autumn day) fires once, at its first occurrence;
- fire times only ever increase, so two wall-clock times that land on the same instant fire once.

An interval fires every ``interval_s`` seconds from its anchor (the schedule's ``start_at``, or the
moment it was created), whatever the time zone.
"""

from __future__ import annotations

import zoneinfo
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache

from croniter import CroniterBadDateError, croniter

from engine.exceptions import EngineError

OVERLAP_POLICIES = ("skip", "buffer_one", "buffer_all", "cancel_other", "allow_all")
MAX_INTERVAL_S = 10 * 366 * 86400  # ten years
SEARCH_LIMIT = 10_000  # fire times a caller may walk through at once (a backfill's size, a catch-up's batch)


class ScheduleInvalid(EngineError):
    """A schedule's field is wrong; the message starts with the field's name and details name it as ``path``."""

    code = "schedule_invalid"

    def __init__(self, field: str, problem: str):
        super().__init__(f"{field}: {problem}", details=[{"path": field, "message": problem}])
        self.field = field


@dataclass(frozen=True)
class Spec:
    """What decides a schedule's fire times."""

    cron: str | None
    interval_s: int | None
    timezone: str
    anchor: datetime  # an interval's first fire time (start_at, or when the schedule was created)
    start_at: datetime | None = None
    end_at: datetime | None = None


@lru_cache(maxsize=1)
def _zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def spec_check(spec: Spec) -> None:
    """Raise ScheduleInvalid naming the first wrong field."""
    if (spec.cron is None) == (spec.interval_s is None):
        raise ScheduleInvalid("cron", "give exactly one of cron and interval_s")
    if spec.interval_s is not None and not (1 <= spec.interval_s <= MAX_INTERVAL_S):
        raise ScheduleInvalid("interval_s", f"must be between 1 and {MAX_INTERVAL_S} seconds")
    if spec.timezone not in _zones():
        raise ScheduleInvalid("timezone", f"unknown IANA time zone {spec.timezone[:64]!r}")
    if spec.cron is not None:
        problem = _cron_problem(spec.cron)
        if problem:
            raise ScheduleInvalid("cron", problem)
    if spec.start_at and spec.end_at and spec.end_at <= spec.start_at:
        raise ScheduleInvalid("end_at", "must be after start_at")


def _cron_problem(expr: str) -> str | None:
    fields = expr.split()
    if len(fields) not in (5, 6):
        return f"{expr[:100]!r} has {len(fields)} fields; a cron expression has 5, or 6 with seconds first"
    try:
        valid = croniter.is_valid(" ".join(fields), second_at_beginning=len(fields) == 6)
    except Exception:  # croniter's own errors on odd text
        valid = False
    if not valid:
        return f"{expr[:100]!r} is not a valid cron expression"
    try:
        _cron_iter(" ".join(fields), datetime(2000, 1, 1)).get_next(datetime)
    except CroniterBadDateError:
        return f"{expr[:100]!r} never fires"
    return None


def _cron_iter(expr: str, start: datetime) -> croniter:
    fields = expr.split()
    return croniter(" ".join(fields), start, second_at_beginning=len(fields) == 6)


def fire_times(spec: Spec, *, after: datetime, inclusive: bool = False) -> Iterator[datetime]:
    """The fire times after ``after`` (or at it, with ``inclusive``), in increasing order, within
    ``start_at`` .. ``end_at`` (both included). Stops at ``end_at``."""
    try:
        lower = after - timedelta(microseconds=1) if inclusive else after
        if spec.start_at and spec.start_at - timedelta(microseconds=1) > lower:
            lower = spec.start_at - timedelta(microseconds=1)
        for t in _interval_times(spec, lower) if spec.interval_s is not None else _cron_times(spec, lower):
            if spec.end_at and t > spec.end_at:
                return
            yield t
    except (OverflowError, CroniterBadDateError):  # past year 9999, or a date the expression never reaches
        return


def _interval_times(spec: Spec, lower: datetime) -> Iterator[datetime]:
    step = timedelta(seconds=spec.interval_s)
    k = (lower - spec.anchor) // step + 1  # negative before the anchor: a backfill reaches back
    t = spec.anchor + k * step
    while True:
        if t > lower:
            yield t
        t += step


def _cron_times(spec: Spec, lower: datetime) -> Iterator[datetime]:
    zone = zoneinfo.ZoneInfo(spec.timezone)
    wall = lower.astimezone(zone).replace(tzinfo=None)
    it = _cron_iter(spec.cron, wall)
    last = lower
    while True:
        local = it.get_next(datetime)
        t = local.replace(tzinfo=zone).astimezone(UTC)  # fold=0: the first occurrence, or shifted past a gap
        if t > last:
            last = t
            yield t


def next_fire_time(spec: Spec, *, after: datetime, inclusive: bool = False) -> datetime | None:
    return next(fire_times(spec, after=after, inclusive=inclusive), None)


def fire_times_between(spec: Spec, *, start: datetime, end: datetime, limit: int = SEARCH_LIMIT) -> list[datetime]:
    """Fire times from ``start`` to ``end`` (both included); ScheduleInvalid on ``end`` if more than ``limit``."""
    out = []
    for t in fire_times(spec, after=start, inclusive=True):
        if t > end:
            break
        if len(out) == limit:
            raise ScheduleInvalid("end", f"the range holds more than {limit} fire times")
        out.append(t)
    return out
