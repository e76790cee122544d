"""Schedules: create, change, pause, resume, trigger now, backfill, and what the API and pages show of one.

Firing is engine.services.schedule_fires; when a schedule fires is engine.core.firetimes.
"""

from __future__ import annotations

from datetime import datetime

from django.db import transaction
from django.utils import timezone

from engine.core.firetimes import OVERLAP_POLICIES, ScheduleInvalid, fire_times, fire_times_between, spec_check
from engine.exceptions import EngineError, InvalidTransition, NotFound
from engine.models import Run, Schedule, ScheduleFire, Workflow
from engine.services import scheduler
from engine.services.schedule_fires import (
    _start,
    fire,
    inputs_render,
    schedule_catch_up,
    schedule_set_next,
    schedule_spec,
)

FIELDS = ("cron", "interval_s", "timezone", "inputs", "overlap", "catchup_window_s", "paused", "start_at", "end_at",
          "jitter_s")
NEXT_COUNT = 5
BACKFILL_LIMIT = 1_000  # fire times one backfill request may hold (split a longer range)
MAX_JITTER_S = 86_400
MAX_CATCHUP_WINDOW_S = 10 * 366 * 86_400


def schedule_get(schedule_id: int) -> Schedule:
    schedule = Schedule.objects.select_related("workflow").filter(pk=schedule_id).first()
    if schedule is None:
        raise NotFound(f"schedule {schedule_id} does not exist")
    return schedule


def schedule_list(*, workflow: str | None = None) -> list[Schedule]:
    schedules = Schedule.objects.select_related("workflow").order_by("workflow__slug", "pk")
    if workflow is not None:
        schedules = schedules.filter(workflow__slug=workflow)
    return list(schedules)


def schedule_create(*, workflow: str, actor=None, **fields) -> Schedule:
    """A new schedule of the workflow. A ``start_at`` in the past makes the fire times since then due (subject
    to ``catchup_window_s``). Raises ScheduleInvalid naming the field; nothing is saved then."""
    wf = Workflow.objects.filter(slug=workflow).first()
    if wf is None:
        raise NotFound(f"workflow {workflow!r} does not exist")
    unknown = set(fields) - set(FIELDS)
    if unknown:
        raise ScheduleInvalid(sorted(unknown)[0], "unknown field")
    schedule = Schedule(workflow=wf, created_by=actor if getattr(actor, "pk", None) else None,
                        created_at=timezone.now(), **{k: v for k, v in fields.items() if v is not None})
    schedule.cron = fields.get("cron")
    schedule.interval_s = fields.get("interval_s")
    _check(schedule)
    with transaction.atomic():
        schedule.save()  # first: an interval without start_at counts from the saved created_at
        now = timezone.now()
        start = schedule.start_at if schedule.start_at and schedule.start_at < now else now
        schedule_set_next(schedule, start, inclusive=True)
        schedule.save(update_fields=["next_fire_at", "due_at"])
    return schedule


def schedule_update(*, schedule_id: int, **fields) -> Schedule:
    """Change the given fields. The fire times already due are first handled under the old settings, as the
    schedule loop would (``schedule_catch_up``); then the next fire time is found again from now.
    ScheduleInvalid: nothing saved (nor fired)."""
    with transaction.atomic():
        schedule = _locked(schedule_id)
        schedule_catch_up(schedule, limit=None)  # under the old settings, before they change
        for name, value in fields.items():
            if name not in FIELDS:
                raise ScheduleInvalid(name, "unknown field")
            if value is None and name not in ("cron", "interval_s", "start_at", "end_at"):
                raise ScheduleInvalid(name, "may not be null")
            setattr(schedule, name, value)
        _check(schedule)
        schedule_set_next(schedule, timezone.now(), inclusive=True)
        schedule.save()
    return schedule


def schedule_delete(*, schedule_id: int) -> None:
    deleted, _ = Schedule.objects.filter(pk=schedule_id).delete()
    if not deleted:
        raise NotFound(f"schedule {schedule_id} does not exist")


def schedule_pause(*, schedule_id: int) -> Schedule:
    """Fire nothing until resumed (buffered fires wait too). The fire times already due are handled first."""
    with transaction.atomic():
        schedule = _locked(schedule_id)
        schedule_catch_up(schedule, limit=None)
        schedule.paused = True
        schedule.save(update_fields=["paused", "updated_at"])
    return schedule


def schedule_resume(*, schedule_id: int) -> Schedule:
    """Fire again from now: the fire times that passed while paused are not made up."""
    with transaction.atomic():
        schedule = _locked(schedule_id)
        if schedule.paused:
            schedule.paused = False
            schedule_set_next(schedule, timezone.now(), inclusive=True)
            schedule.save(update_fields=["paused", "next_fire_at", "due_at", "updated_at"])
    return schedule


def schedule_trigger(*, schedule_id: int, actor=None) -> Run:
    """Start a run now (trigger ``manual: true``), whatever the overlap policy. Raises what stopped it."""
    with transaction.atomic():
        schedule = _locked(schedule_id)
        now = timezone.now()
        fire_id = ScheduleFire.objects.create(schedule=schedule, kind=ScheduleFire.Kind.MANUAL, fire_time=now,
                                              status=ScheduleFire.Status.STARTED, overlap=Schedule.Overlap.ALLOW_ALL).pk
        run = _start(schedule, now, kind=ScheduleFire.Kind.MANUAL, actor=actor)
        ScheduleFire.objects.filter(pk=fire_id).update(run=run)
        from engine.observability import metrics

        transaction.on_commit(lambda: metrics.schedule_fired(kind=ScheduleFire.Kind.MANUAL))
    return run


def schedule_backfill(*, schedule_id: int, start: datetime, end: datetime, overlap: str = "buffer_all") -> dict:
    """Fire every fire time from ``start`` to ``end`` (both included; the schedule's own start and end do not
    apply) under ``overlap``, each once: a time backfilled before is not fired again. Returns the counts."""
    if overlap not in OVERLAP_POLICIES:
        raise ScheduleInvalid("overlap", f"must be one of {', '.join(OVERLAP_POLICIES)}")
    if end < start:
        raise ScheduleInvalid("end", "must not be before start")
    with transaction.atomic():
        schedule = _locked(schedule_id)
        spec = schedule_spec(schedule)
        spec = type(spec)(cron=spec.cron, interval_s=spec.interval_s, timezone=spec.timezone, anchor=spec.anchor)
        times = fire_times_between(spec, start=start, end=end, limit=BACKFILL_LIMIT)
        counts = {"fire_times": len(times), "started": 0, "buffered": 0, "skipped": 0, "failed": 0, "already": 0}
        for t in times:
            status = fire(schedule, t, kind=ScheduleFire.Kind.BACKFILL, overlap=overlap)
            counts[status or "already"] += 1
    return counts


def schedule_next_fire_times(schedule: Schedule, count: int = NEXT_COUNT) -> list[datetime]:
    if schedule.next_fire_at is None:
        return []
    out = [schedule.next_fire_at]
    for t in fire_times(schedule_spec(schedule), after=schedule.next_fire_at):
        if len(out) == count:
            break
        out.append(t)
    return out


def schedule_recent_fires(schedule: Schedule, count: int = 5) -> list[ScheduleFire]:
    return list(schedule.fires.order_by("-fire_time", "-pk")[:count])


def _locked(schedule_id: int) -> Schedule:
    schedule = Schedule.objects.select_for_update(of=("self",)).select_related("workflow").filter(
        pk=schedule_id).first()
    if schedule is None:
        raise NotFound(f"schedule {schedule_id} does not exist")
    return schedule


def _check(schedule: Schedule) -> None:
    """Raise ScheduleInvalid naming the first wrong field, after trying the inputs template on the next fire."""
    spec_check(schedule_spec(schedule))
    if schedule.overlap not in OVERLAP_POLICIES:
        raise ScheduleInvalid("overlap", f"must be one of {', '.join(OVERLAP_POLICIES)}")
    if not (0 <= schedule.catchup_window_s <= MAX_CATCHUP_WINDOW_S):
        raise ScheduleInvalid("catchup_window_s", f"must be between 0 and {MAX_CATCHUP_WINDOW_S}")
    if not (0 <= schedule.jitter_s <= MAX_JITTER_S):
        raise ScheduleInvalid("jitter_s", f"must be between 0 and {MAX_JITTER_S}")
    if not isinstance(schedule.inputs, dict):
        raise ScheduleInvalid("inputs", "must be a JSON object (its strings may be templates)")
    if schedule.workflow.archived:
        raise InvalidTransition(f"workflow {schedule.workflow.slug!r} is archived; restore it to schedule runs")
    version = schedule.workflow.current_version
    sample = next(fire_times(schedule_spec(schedule), after=timezone.now()), None) or timezone.now()
    try:
        inputs = inputs_render(schedule, sample)
        if version is not None:
            scheduler._check_input_size(inputs)
            scheduler._check_inputs(version.definition.get("inputs") or {"type": "object"}, inputs)
    except EngineError as exc:
        raise ScheduleInvalid("inputs", f"for a fire at {sample.isoformat()}: {exc.message}") from None

