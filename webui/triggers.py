"""The workflow page's Triggers tab: its schedules (webui/templates/webui/_schedules.html, shown by
webui/frontend/src/schedules.js; changes go through the REST API), webhook endpoints (URL, a ready curl example,
secret rotation, the last deliveries) and event triggers. Creating an endpoint and rotating its secret post
here and call the engine; the page that answers shows the new secret, once, and it is kept nowhere else in the
clear."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from api.views.schedules import schedule_data
from engine.core.firetimes import OVERLAP_POLICIES
from engine.exceptions import EngineError
from engine.services import events, webhooks
from engine.services.schedules import schedule_list
from webui.access import can_design, can_view, roles
from webui.views import _workflow_or_404


def _page(request, slug, *, new_secret: dict | None = None):
    if not can_view(request.user):
        raise PermissionDenied("You need the viewer, operator or designer role.")
    workflow = _workflow_or_404(slug)
    endpoints = []
    for described in webhooks.webhook_list(workflow=slug):
        described["url"] = request.build_absolute_uri(described["url"])
        described["deliveries"] = webhooks.webhook_deliveries(endpoint_id=described["id"], limit=10)
        endpoints.append(described)
    context = {"roles": roles(request.user), "workflow": workflow, "endpoints": endpoints,
               "event_triggers": events.event_trigger_list(workflow=slug), "new_secret": new_secret,
               "events_url": request.build_absolute_uri("/api/events/"),
               "schedules": [schedule_data(s) for s in schedule_list(workflow=workflow.slug)],
               "overlaps": OVERLAP_POLICIES, "props": {"mode": "triggers"}}
    return render(request, "webui/workflow_triggers.html", context)


@login_required
def workflow_triggers(request, slug):
    return _page(request, slug)


def _require_design(request) -> None:
    if not can_design(request.user):
        raise PermissionDenied("Changing webhook endpoints needs the designer role.")


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
    return _secret_page(request, slug, lambda: webhooks.webhook_rotate(endpoint_id=endpoint_id), rotated=True)


@login_required
@require_POST
def webhook_enable_view(request, slug, endpoint_id):
    _require_design(request)
    enabled = request.POST.get("enabled") == "1"
    try:
        webhooks.webhook_update(endpoint_id=endpoint_id, enabled=enabled)
    except EngineError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"Webhook endpoint {'enabled' if enabled else 'disabled'}.")
    return redirect("webui:workflow-triggers", slug=slug)
