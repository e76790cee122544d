"""The workflow page's Triggers tab: its schedules (webui/templates/webui/_schedules.html, shown by
webui/frontend/src/schedules.js; changes go through the REST API), webhook endpoints (URL, a ready curl example,
secret rotation, the last deliveries) and event triggers. Creating an endpoint and rotating its secret post
here and call the engine; the page that answers shows the new secret, once, and it is kept nowhere else in the
clear. The event trigger form posts here too, and is checked as ``POST /api/workflows/{slug}/event-triggers/``
checks its body (the same serializer, then the engine); a refused form comes back with each error next to its
field."""

from __future__ import annotations

import json

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from api.trigger_serializers import EventTriggerCreateSerializer
from api.views.schedules import schedule_data
from engine.core.firetimes import OVERLAP_POLICIES
from engine.exceptions import EngineError, TriggerInvalid
from engine.models import EventTrigger
from engine.services import events, webhooks
from engine.services.schedules import schedule_list
from webui.access import can_design, can_view, roles
from webui.views import _workflow_or_404

# The event trigger form's fields, in the API body's names; a new form has these values.
EVENT_FORM_FIELDS = ("name", "filter_language", "filter", "inputs", "enabled")
EVENT_FORM_NEW = {"name": "", "filter_language": "template", "filter": "", "inputs": "", "enabled": True}


def _json_text(value) -> str:
    """A mapping or an inputs template as it was written: JSON, except a plain string (a JMESPath expression)."""
    return value if isinstance(value, str) else json.dumps(value)


def _page(request, slug, *, new_secret: dict | None = None, event_form: dict | None = None, status: int = 200):
    if not can_view(request.user):
        raise PermissionDenied("You need the viewer, operator or designer role.")
    workflow = _workflow_or_404(slug)
    endpoints = []
    for described in webhooks.webhook_list(workflow=slug):
        described["url"] = request.build_absolute_uri(described["url"])
        described["deliveries"] = webhooks.webhook_deliveries(endpoint_id=described["id"], limit=10)
        described["mapping_text"] = _json_text(described["mapping"])
        endpoints.append(described)
    event_triggers = [{**t, "inputs_text": _json_text(t["inputs"])} for t in events.event_trigger_list(workflow=slug)]
    context = {"roles": roles(request.user), "workflow": workflow, "endpoints": endpoints,
               "event_triggers": event_triggers, "new_secret": new_secret,
               "events_url": request.build_absolute_uri("/api/events/"),
               "schedules": [schedule_data(s) for s in schedule_list(workflow=workflow.slug)],
               "overlaps": OVERLAP_POLICIES, "filter_languages": EventTrigger.FilterLanguage.values,
               "event_form": event_form or {"values": EVENT_FORM_NEW, "errors": {}},
               "props": {"mode": "triggers"}}
    return render(request, "webui/workflow_triggers.html", context, status=status)


@login_required
def workflow_triggers(request, slug):
    return _page(request, slug)


def _require_design(request) -> None:
    if not can_design(request.user):
        raise PermissionDenied("Changing triggers needs the designer role.")


def _require_endpoint_of(slug, endpoint_id) -> None:
    """404 unless the endpoint is one of this workflow's (the URL names both)."""
    try:
        if webhooks.webhook_get(endpoint_id)["workflow"] == slug:
            return
    except EngineError:
        pass
    raise Http404(f"workflow {slug} has no webhook endpoint {endpoint_id}")


def _secret_page(request, slug, make, *, rotated: bool):
    """The page answering a new endpoint or a rotation: the signing secret ``make`` returns (with the endpoint),
    shown this once; an engine error goes back to the page as a message."""
    try:
        described, secret = make()
    except EngineError as exc:
        messages.error(request, exc.message)
        return redirect("webui:workflow-triggers", slug=slug)
    return _page(request, slug, new_secret={"id": described["id"], "secret": secret, "rotated": rotated})


@login_required
@require_POST
def webhook_create_view(request, slug):
    _require_design(request)
    _workflow_or_404(slug)
    description = request.POST.get("description", "")[:200]
    return _secret_page(request, slug, lambda: webhooks.webhook_create(workflow=slug, actor=request.user,
                                                                       description=description), rotated=False)


@login_required
@require_POST
def webhook_rotate_view(request, slug, endpoint_id):
    _require_design(request)
    _require_endpoint_of(slug, endpoint_id)
    return _secret_page(request, slug, lambda: webhooks.webhook_rotate(endpoint_id=endpoint_id), rotated=True)


@login_required
@require_POST
def webhook_enable_view(request, slug, endpoint_id):
    _require_design(request)
    _require_endpoint_of(slug, endpoint_id)
    enabled = request.POST.get("enabled") == "1"
    try:
        webhooks.webhook_update(endpoint_id=endpoint_id, enabled=enabled)
    except EngineError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"Webhook endpoint {'enabled' if enabled else 'disabled'}.")
    return redirect("webui:workflow-triggers", slug=slug)


def _event_trigger_body(post) -> tuple[dict, dict[str, str]]:
    """The API body the event trigger form stands for, and the errors by field of what is not even JSON."""
    body = {"name": post.get("name", ""), "filter_language": post.get("filter_language", "template"),
            "filter": post.get("filter", ""), "enabled": post.get("enabled") == "on"}
    errors = {}
    if post.get("inputs", "").strip():
        try:
            body["inputs"] = json.loads(post["inputs"])
        except ValueError as exc:
            errors["inputs"] = f"not JSON: {exc}"
    return body, errors


def _errors_by_field(exc: TriggerInvalid) -> dict[str, str]:
    """The engine's error by the form field it names (``form`` for one the form has no field of)."""
    errors = {}
    for detail in exc.details or [{}]:
        field = detail.get("field") if detail.get("field") in EVENT_FORM_FIELDS else "form"
        errors.setdefault(field, detail.get("message") or exc.message)
    return errors


@login_required
@require_POST
def event_trigger_create_view(request, slug):
    _require_design(request)
    _workflow_or_404(slug)
    body, errors = _event_trigger_body(request.POST)
    if not errors:
        serializer = EventTriggerCreateSerializer(data=body)
        if serializer.is_valid():
            try:
                created = events.event_trigger_create(workflow=slug, actor=request.user, **serializer.validated_data)
            except TriggerInvalid as exc:
                errors = _errors_by_field(exc)
            else:
                messages.success(request, f"Event trigger on {created['name']} created.")
                return redirect(reverse("webui:workflow-triggers", kwargs={"slug": slug}) + "#events-heading")
        else:
            errors = {field: str(problems[0]) for field, problems in serializer.errors.items()}
    values = {**{k: request.POST.get(k, EVENT_FORM_NEW[k]) for k in EVENT_FORM_FIELDS}, "enabled": body["enabled"]}
    first = next((f for f in EVENT_FORM_FIELDS if f in errors), None)
    return _page(request, slug, event_form={"values": values, "errors": errors, "first": first}, status=400)


@login_required
@require_POST
def event_trigger_delete_view(request, slug, trigger_id):
    _require_design(request)
    try:
        events.event_trigger_delete(trigger_id=trigger_id, workflow=slug)
    except EngineError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, "Event trigger deleted.")
    return redirect(reverse("webui:workflow-triggers", kwargs={"slug": slug}) + "#events-heading")
