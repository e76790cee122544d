"""Outside events (``POST /api/events/``): event triggers start runs of workflows, and waiting
``wait_for_event`` steps receive them (engine.core.eventwaits).

An event is ``{"name", "payload", "id", "key"}``. Its id is unique (a resend of the same id is a no-op that
answers what the first did); its ``key`` (default empty) is the correlation key ``wait_for_event`` steps match.
Sending one, in one transaction: take the (name, key) lock, store the event, start a run of each workflow with
an enabled trigger on that name whose filter is true (the run's idempotency key is ``event:<id>``). After that
commits, every step waiting for it is woken.
"""

from __future__ import annotations

import json
import logging
import uuid

from django.db import connection, transaction

from engine.core import eventwaits
from engine.exceptions import EngineError, NotFound, TriggerInvalid
from engine.models import EventTrigger, OutsideEvent, Workflow
from engine.observability import metrics
from engine.services.expressions import expression_apply, expression_check
from engine.services.scheduler import run_start
from engine.statements import execute

log = logging.getLogger(__name__)

MAX_NAME = 200
MAX_KEY = 500
MAX_ID = 190  # the runs it starts have the idempotency key event:<id> (200 at most)


def _invalid(field: str, message: str) -> TriggerInvalid:
    return TriggerInvalid(f"{field}: {message}", details=[{"field": field, "message": message}])


def _check_name(name, field: str = "name") -> str:
    if not isinstance(name, str) or not name.strip() or len(name) > MAX_NAME:
        raise _invalid(field, f"an event name is 1-{MAX_NAME} characters")
    return name


# -- event triggers -----------------------------------------------------------------------------


def event_trigger_describe(t: EventTrigger) -> dict:
    return {"id": t.pk, "workflow": t.workflow.slug, "name": t.name, "filter": t.filter,
            "filter_language": t.filter_language, "inputs": t.inputs, "enabled": t.enabled,
            "created_at": t.created_at}


def event_trigger_create(*, workflow: str, name: str, filter: str = "", filter_language: str = "template",
                         inputs=None, enabled: bool = True, actor=None) -> dict:
    """A trigger of ``workflow`` on events named ``name``: each (whose ``filter`` over {"payload", "name",
    "key", "id"} is true) starts a run, with the event's payload as inputs or ``inputs`` rendered over it."""
    wf = Workflow.objects.filter(slug=workflow).first()
    if wf is None:
        raise NotFound(f"workflow {workflow!r} does not exist")
    _check_name(name)
    if filter:
        expression_check(filter, language=filter_language, field="filter", condition=True)
    elif filter_language not in ("template", "jmespath"):
        raise _invalid("filter_language", f"must be template or jmespath, got {filter_language!r}")
    if inputs is not None:
        expression_check(inputs, language="template", field="inputs")
    trigger = EventTrigger.objects.create(workflow=wf, name=name, filter=filter or "",
                                          filter_language=filter_language, inputs=inputs, enabled=enabled,
                                          created_by=actor if getattr(actor, "pk", None) else None)
    return event_trigger_describe(trigger)


def event_trigger_list(*, workflow: str | None = None) -> list[dict]:
    qs = EventTrigger.objects.select_related("workflow").order_by("name", "id")
    if workflow is not None:
        if not Workflow.objects.filter(slug=workflow).exists():
            raise NotFound(f"workflow {workflow!r} does not exist")
        qs = qs.filter(workflow__slug=workflow)
    return [event_trigger_describe(t) for t in qs]


def event_trigger_delete(*, trigger_id: int, workflow: str | None = None) -> None:
    """Delete the trigger (only if it is ``workflow``'s, when given)."""
    triggers = EventTrigger.objects.filter(pk=trigger_id)
    if workflow is not None:
        triggers = triggers.filter(workflow__slug=workflow)
    if not triggers.delete()[0]:
        where = f" in workflow {workflow!r}" if workflow else ""
        raise NotFound(f"event trigger {trigger_id} does not exist{where}")


# -- sending events -----------------------------------------------------------------------------


def event_send(*, name: str, payload=None, event_id: str | None = None, key=None, actor=None) -> dict:
    """Store the event, start the runs its triggers ask for, wake the steps waiting for it. Returns
    ``{"id", "name", "key", "duplicate", "runs": [{"run", "workflow"}], "woken": [{"run", "step"}],
    "skipped": [{"workflow", "error"}]}``; a resend of an id answers the first sending's result with
    ``duplicate`` true and does nothing."""
    _check_name(name)
    if event_id is None or event_id == "":
        event_id = str(uuid.uuid4())
    if not isinstance(event_id, str) or len(event_id) > MAX_ID:
        raise _invalid("id", f"an event id is a string of at most {MAX_ID} characters")
    key = "" if key is None else key
    if isinstance(key, bool) or not isinstance(key, str | int | float):
        raise _invalid("key", "the correlation key is a string (or a number)")
    key = str(key)
    if len(key) > MAX_KEY:
        raise _invalid("key", f"the correlation key has at most {MAX_KEY} characters")
    sender = getattr(actor, "username", "") or ""
    with transaction.atomic():
        eventwaits.event_lock(name=name, key=key)
        with connection.cursor() as cur:
            execute(cur, eventwaits.SQL["event_insert"], {"event_id": event_id, "name": name, "key": key,
                                                          "payload": json.dumps(payload), "sender": sender})
            row = cur.fetchone()
        if row is None:
            first = OutsideEvent.objects.filter(event_id=event_id).first()
            return {"id": event_id, "name": first.name, "key": first.key, "duplicate": True,
                    **{k: (first.result or {}).get(k, []) for k in ("runs", "woken", "skipped")}}
        event = OutsideEvent(pk=row[0], event_id=event_id, name=name, key=key, payload=payload,
                             received_at=row[1], sender=sender)
        runs, skipped = _start_triggered(event, actor=actor)
    metrics.event_received(started=len(runs))
    woken = eventwaits.event_wake(event)
    result = {"runs": runs, "woken": woken, "skipped": skipped}
    OutsideEvent.objects.filter(pk=event.pk).update(result=result)
    return {"id": event_id, "name": name, "key": key, "duplicate": False, **result}


def _start_triggered(event: OutsideEvent, *, actor) -> tuple[list[dict], list[dict]]:
    """Start a run of each workflow with an enabled trigger on the event whose filter holds (in the event's
    transaction; a workflow that refuses the run, e.g. inputs its schema rejects, is skipped and named)."""
    data = {"payload": event.payload, "name": event.name, "key": event.key, "id": event.event_id}
    runs, skipped, started = [], [], set()
    for trigger in EventTrigger.objects.filter(name=event.name, enabled=True).select_related("workflow") \
            .order_by("id"):
        slug = trigger.workflow.slug
        if slug in started:
            continue  # one run per workflow and event
        try:
            if trigger.filter and not expression_apply(trigger.filter, language=trigger.filter_language,
                                                       data=data, field="filter", condition=True):
                continue
            inputs = event.payload if trigger.inputs is None else expression_apply(
                trigger.inputs, language="template", data=data, field="inputs")
            if inputs is None:
                inputs = {}
            with transaction.atomic():
                run, _ = run_start(workflow=trigger.workflow, inputs=inputs, idempotency_key=f"event:{event.event_id}",
                                   actor=actor, trigger={"kind": "event", "event_id": event.event_id,
                                                         "name": event.name, "trigger_id": trigger.pk})
        except EngineError as exc:
            skipped.append({"workflow": slug, "error": exc.message})
            continue
        started.add(slug)
        runs.append({"run": str(run.pk), "workflow": slug})
    return runs, skipped
