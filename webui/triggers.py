"""The workflow page's Triggers tab: its schedules (webui/templates/webui/_schedules.html), with what the
browser needs to show them (webui/frontend/src/schedules.js). Changes go through the REST API."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.shortcuts import render

from api.views.schedules import schedule_data
from engine.core.firetimes import OVERLAP_POLICIES
from engine.services.schedules import schedule_list
from webui.views import _common, _require_view, _workflow_or_404


@login_required
def workflow_triggers(request, slug):
    _require_view(request)
    workflow = _workflow_or_404(slug)
    schedules = [schedule_data(s) for s in schedule_list(workflow=workflow.slug)]
    context = {**_common(request), "workflow": workflow, "schedules": schedules, "overlaps": OVERLAP_POLICIES,
               "props": {"mode": "triggers"}}
    return render(request, "webui/workflow_triggers.html", context)
