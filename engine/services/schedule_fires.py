"""Firing schedules: due fire times, the overlap policy, buffered fires, runs started with a schedule trigger.

Each fire is claimed by inserting its ScheduleFire row (``fire_claim`` in sql/schedules.sql): the unique
(schedule, kind, fire time) decides, in the same transaction that starts its run, so a fire happens once
whichever ``runworkers`` process or host gets there first. The schedule's row is locked meanwhile, so its
``next_fire_at`` moves forward once too.

Overlap policies (Temporal's), when a run the schedule started is still pending or running:
``skip`` drops the fire; ``buffer_one`` keeps it for when that run finishes, unless one is kept already
(then it is dropped); ``buffer_all`` keeps every one, started one at a time, oldest first; ``cancel_other``
cancels the running one and starts; ``allow_all`` starts regardless.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from itertools import chain

from django.db import connection, transaction
from django.db.models.functions import Now
from django.utils import timezone

from engine import statements
from engine.core.firetimes import Spec, fire_times
from engine.exceptions import EngineError
from engine.models import Run, Schedule, ScheduleFire
from engine.observability import metrics
from engine.services.scheduler import run_cancel, run_start
from engine.states import RunStatus
from engine.templating.templates import render

SQL = statements.load(__file__, "sql/schedules.sql")
BATCH = 100  # fire times one transaction handles (a long catch-up takes several)
ACTIVE = (RunStatus.PENDING, RunStatus.RUNNING)
Fire = ScheduleFire
Overlap = Schedule.Overlap


def schedule_spec(schedule: Schedule) -> Spec:
    anchor = schedule.start_at or schedule.created_at.replace(microsecond=0)
    return Spec(cron=schedule.cron, interval_s=schedule.interval_s, timezone=schedule.timezone, anchor=anchor,
                start_at=schedule.start_at, end_at=schedule.end_at)


def schedule_set_next(schedule: Schedule, after: datetime, *, inclusive: bool) -> None:
    """Point ``next_fire_at`` at the first fire time after ``after`` (not saved), and ``due_at`` at it plus jitter."""
    nxt = next(fire_times(schedule_spec(schedule), after=after, inclusive=inclusive), None)
    schedule.next_fire_at = nxt
    schedule.due_at = _with_jitter(schedule, nxt)


def _with_jitter(schedule: Schedule, t: datetime | None) -> datetime | None:
    if t is None or not schedule.jitter_s:
        return t
    return t + timedelta(seconds=random.uniform(0, schedule.jitter_s))  # noqa: S311 (spreading load, not secrecy)


def inputs_render(schedule: Schedule, scheduled_for: datetime) -> dict:
    """The run inputs of one fire: the schedule's ``inputs`` template with ``scheduled_for`` (ISO 8601, UTC)."""
    context = {"scheduled_for": scheduled_for.isoformat(), "schedule": {"id": schedule.pk}}
    return render(schedule.inputs, context, path="inputs")


def active_run_ids(schedule: Schedule) -> list:
    """The schedule's runs still pending or running."""
    started = Fire.objects.filter(schedule_id=schedule.pk, status=Fire.Status.STARTED).values("run_id")
    return list(Run.objects.filter(pk__in=started, status__in=ACTIVE).values_list("pk", flat=True))


def _claim(schedule: Schedule, t: datetime, *, kind: str, status: str, overlap: str) -> int | None:
    with connection.cursor() as cur:
        statements.execute(cur, SQL["fire_claim"], {"schedule": schedule.pk, "kind": kind, "fire_time": t,
                                                   "status": status, "overlap": overlap})
        row = cur.fetchone()
    return row[0] if row else None


def _start(schedule: Schedule, t: datetime, *, kind: str, actor=None) -> Run:
    """Start the fire's run (raises the EngineError that stopped it)."""
    trigger = {"kind": "schedule", "schedule": schedule.pk, "scheduled_for": t.isoformat()}
    if kind != Fire.Kind.SCHEDULED:
        trigger[kind] = True  # "backfill": true or "manual": true
    with transaction.atomic():  # a savepoint: a run that fails to start leaves nothing behind
        run, _ = run_start(workflow=schedule.workflow, inputs=inputs_render(schedule, t), actor=actor,
                           trigger=trigger)
    return run


def _start_recorded(schedule: Schedule, fire_id: int, t: datetime, *, kind: str, lag_s: float | None) -> bool:
    try:
        run = _start(schedule, t, kind=kind)
    except EngineError as exc:
        Fire.objects.filter(pk=fire_id).update(status=Fire.Status.FAILED, error=exc.message[:2000])
        return False
    Fire.objects.filter(pk=fire_id).update(status=Fire.Status.STARTED, run=run)
    transaction.on_commit(lambda: metrics.schedule_fired(kind=kind, lag_s=lag_s))
    return True


def fire(schedule: Schedule, t: datetime, *, kind: str, overlap: str, lag_s: float | None = None) -> str | None:
    """Handle one fire time under ``overlap``, inside the caller's transaction holding the schedule's row.
    Returns the fire's status, or None when it was handled before."""
    active = active_run_ids(schedule) if overlap != Overlap.ALLOW_ALL else []
    status = Fire.Status.STARTED
    if active and overlap == Overlap.SKIP:
        status = Fire.Status.SKIPPED
    elif active and overlap == Overlap.BUFFER_ALL:
        status = Fire.Status.BUFFERED
    elif active and overlap == Overlap.BUFFER_ONE:
        kept = Fire.objects.filter(schedule_id=schedule.pk, status=Fire.Status.BUFFERED).exists()
        status = Fire.Status.SKIPPED if kept else Fire.Status.BUFFERED
    fire_id = _claim(schedule, t, kind=kind, status=status, overlap=overlap)
    if fire_id is None:
        return None
    if status == Fire.Status.SKIPPED:
        transaction.on_commit(lambda: metrics.schedule_overlap_skipped(policy=overlap))
        return status
    if status == Fire.Status.BUFFERED:
        return status
    if active and overlap == Overlap.CANCEL_OTHER:
        for run_id in active:
            run_cancel(run_id=run_id, actor="schedule", reason=f"cancelled by schedule {schedule.pk} (overlap "
                                                             f"cancel_other) for its {t.isoformat()} fire")
    started = _start_recorded(schedule, fire_id, t, kind=kind, lag_s=lag_s)
    return Fire.Status.STARTED if started else Fire.Status.FAILED


def schedule_fire_due(schedule_id: int) -> int:
    """Handle the due fire times of one schedule (at most BATCH), in one transaction holding its row (see
    ``schedule_catch_up``). Returns how many it handled (0: none were due, or another process holds the
    schedule)."""
    with transaction.atomic():
        schedule = (Schedule.objects.select_for_update(skip_locked=True, of=("self",)).select_related("workflow")
                    .filter(pk=schedule_id, paused=False, due_at__lte=Now()).first())
        if schedule is None:
            return 0
        return schedule_catch_up(schedule, limit=BATCH)


def schedule_catch_up(schedule: Schedule, *, limit: int | None) -> int:
    """Handle the schedule's fire times from its ``next_fire_at`` up to now, inside the caller's transaction
    holding its row: those within ``catchup_window_s`` fire under its overlap policy, older ones are counted as
    missed (``missed_count`` and ``weft_schedule_misses``); ``next_fire_at`` moves past them (saved). At most
    ``limit`` times (None: all of them). Returns how many it handled. A paused schedule has none: the times that
    pass while it is paused are not made up, nor counted as missed (as in Temporal).

    The one place that decides what becomes of a due fire time: the schedule loop calls it, and so do a change
    and a pause, before they apply, so the times due under the old settings are not dropped."""
    now = timezone.now()
    first = schedule.next_fire_at
    if schedule.paused or first is None or first > now:
        return 0
    handled = missed = 0
    following = None
    for t in chain([first], fire_times(schedule_spec(schedule), after=first)):
        if t > now or (limit is not None and handled >= limit):
            following = t
            break
        handled += 1
        if (now - t).total_seconds() > schedule.catchup_window_s:
            missed += 1
            continue
        due = schedule.due_at if t == first else t
        fire(schedule, t, kind=Fire.Kind.SCHEDULED, overlap=schedule.overlap,
             lag_s=(timezone.now() - due).total_seconds())
    schedule.next_fire_at = following
    schedule.due_at = following if following is None or following <= now else _with_jitter(schedule, following)
    schedule.missed_count += missed
    schedule.save(update_fields=["next_fire_at", "due_at", "missed_count", "updated_at"])
    if missed:
        transaction.on_commit(lambda: metrics.schedule_missed(missed))
    return handled


def buffered_start_next(schedule_id: int) -> bool:
    """Start the schedule's oldest buffered fire if none of its runs is going. Returns whether one started."""
    with transaction.atomic():
        schedule = (Schedule.objects.select_for_update(skip_locked=True, of=("self",)).select_related("workflow")
                    .filter(pk=schedule_id, paused=False).first())
        if schedule is None or active_run_ids(schedule):
            return False
        buffered = Fire.objects.filter(schedule_id=schedule_id, status=Fire.Status.BUFFERED).order_by(
            "fire_time", "pk").first()
        if buffered is None:
            return False
        return _start_recorded(schedule, buffered.pk, buffered.fire_time, kind=buffered.kind, lag_s=None)


def schedules_fire_once(limit: int = BATCH) -> int:
    """One pass over every due schedule and every schedule with a buffered fire. Returns how much it did."""
    due = list(Schedule.objects.filter(paused=False, due_at__lte=Now()).order_by("due_at")
               .values_list("pk", flat=True)[:limit])
    done = sum(schedule_fire_due(pk) for pk in due)
    buffered = list(Fire.objects.filter(status=Fire.Status.BUFFERED, schedule__paused=False)
                    .values_list("schedule_id", flat=True).distinct()[:limit])
    done += sum(buffered_start_next(pk) for pk in buffered)
    return done
