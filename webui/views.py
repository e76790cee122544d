"""Pages. Lists are server-rendered; the run view and the editor mount the React island with
``json_script`` props. Changes go through the REST API, except the list page's duplicate and
archive buttons, which post here and call the engine."""

from __future__ import annotations

import uuid
from datetime import timedelta

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, JsonResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from engine.core.queues import queue_stats
from engine.core.registry import node_types
from engine.core.versions import version_graph
from engine.demos import demo_definitions
from engine.exceptions import EngineError
from engine.models import Credential, Run, StepRun, Workflow
from engine.services import queries
from engine.services.analytics import workflow_analytics
from engine.services.limits import limit_list
from engine.services.workflows import workflow_archive, workflow_get, workflow_save
from engine.states import TRIGGER_KINDS, RunStatus
from webui import analytics as charts
from webui.access import can_design, can_use_credentials, can_view, roles
from webui.inputs import step_inputs
from webui.run_rows import run_rows
from webui.snapshot import props_script, run_snapshot
from webui.templatetags.weft import STATUS

RUN_PAGE_SIZE = 100
SINCE = {"1h": timedelta(hours=1), "24h": timedelta(days=1), "7d": timedelta(days=7), "30d": timedelta(days=30)}


def _require_view(request) -> None:
    if not can_view(request.user):
        raise PermissionDenied("You need the viewer, operator or designer role.")


def _common(request) -> dict:
    return {"roles": roles(request.user)}


@login_required
def home(request):
    """Where to go next, and the demo workflows to try first (each with its Run button)."""
    demos = []
    if can_view(request.user):
        by_slug = {w.slug: w for w in Workflow.objects.filter(slug__in=[d["slug"] for d in demo_definitions()])
                   .select_related("current_version")}
        demos = [{"definition": d, "workflow": by_slug.get(d["slug"])} for d in demo_definitions()]
    return render(request, "home.html", {**_common(request), "demos": demos, "props": {"mode": "workflows"}})


@login_required
def workflow_list(request):
    _require_view(request)
    q = request.GET.get("q", "").strip()
    archived = request.GET.get("archived") == "1"
    workflows = list(queries.workflows_search(q=q, include_archived=archived)[:500])
    return render(request, "webui/workflows.html", {**_common(request), "workflows": workflows, "q": q,
                                                     "archived": archived, "props": {"mode": "workflows"}})


@login_required
def workflow_detail(request, slug):
    """The workflow's run analytics: success rate, p50/p95 duration, runs and retries over time, and
    the nodes that fail most, over the last ``?days=`` days."""
    _require_view(request)
    workflow = _workflow_or_404(slug)
    days = charts.parse_days(request.GET.get("days"))
    data = workflow_analytics(workflow, days=days)
    context = {
        **_common(request), "workflow": workflow, "analytics": data, "days": days,
        "days_choices": charts.DAYS_CHOICES, "success_rate": charts.percent(data["success_rate"]),
        "run_counts": [(status, n) for status, n in data["runs"].items() if n],
        "runs_chart": charts.runs_chart(data), "retries_chart": charts.retries_chart(data),
        "runs_legend": [("other", "Not failed (succeeded, running, cancelled)"), ("failed", "Failed (hatched)")],
        "retries_legend": [("retries", "Retries and reruns (attempts after a step's first)")],
    }
    return render(request, "webui/workflow.html", context)


GRID_RUN_CHOICES = (10, 25, 50, 100)


@login_required
def workflow_grid_view(request, slug):
    """The last runs as columns, the steps as rows (Airflow's grid): each cell links to that step."""
    _require_view(request)
    workflow = _workflow_or_404(slug)
    try:
        runs = int(request.GET.get("runs", "25"))
    except ValueError:
        runs = 25
    runs = runs if runs in GRID_RUN_CHOICES else 25
    grid = queries.workflow_grid(workflow, runs=runs)
    for row in grid["rows"]:
        row["pairs"] = list(zip(grid["runs"], row["cells"], strict=True))
    legend = [(s, label) for s, (_, label) in STATUS.items()]
    return render(request, "webui/grid.html", {**_common(request), "workflow": workflow, "grid": grid, "runs": runs,
                                                "run_choices": GRID_RUN_CHOICES, "legend": legend})


@login_required
@require_POST
def workflow_duplicate(request, slug):
    if not can_design(request.user):
        raise PermissionDenied("Duplicating a workflow needs the designer role.")
    source = _workflow_or_404(slug)
    if source.current_version is None:
        raise Http404("workflow has no saved version")
    new_slug = _free_slug(f"{slug}-copy")
    definition = dict(source.current_version.definition, slug=new_slug, name=f"{source.name} (copy)")
    try:
        workflow_save(definition=definition, actor=request.user, note=f"duplicated from {slug}")
    except EngineError as exc:
        messages.error(request, exc.message)
        return redirect("webui:workflows")
    messages.success(request, f"Duplicated {slug} as {new_slug}.")
    return redirect("webui:workflow-edit", slug=new_slug)


@login_required
@require_POST
def workflow_archive_view(request, slug):
    if not can_design(request.user):
        raise PermissionDenied("Archiving a workflow needs the designer role.")
    _workflow_or_404(slug)
    workflow_archive(slug)
    messages.success(request, f"Archived {slug}. Its runs are kept; saving it again restores it.")
    return redirect("webui:workflows")


def _workflow_or_404(slug) -> Workflow:
    try:
        return workflow_get(slug)
    except EngineError:
        raise Http404(f"no workflow {slug}") from None


def _free_slug(base: str) -> str:
    base = base[:90]
    slug, n = base, 2
    while Workflow.objects.filter(slug=slug).exists():
        slug, n = f"{base}-{n}", n + 1
    return slug


def _node_types() -> list[dict]:
    return [
        {"name": t.name, "label": t.label, "description": t.description, "config_schema": t.config_schema,
         "default_queue": t.default_queue, "inline": t.inline, "outputs": t.outputs}
        for t in sorted(node_types().values(), key=lambda t: t.name)
    ]


@login_required
def workflow_edit(request, slug=None):
    _require_view(request)
    workflow = _workflow_or_404(slug) if slug else None
    definition = workflow.current_version.definition if workflow and workflow.current_version else None
    if definition is not None:
        definition = _with_positions(workflow.current_version)
    versions = []
    if workflow:
        versions = [
            {"number": v.number, "note": v.note, "created_at": v.created_at.isoformat(),
             "created_by": v.created_by.get_username() if v.created_by_id else ""}
            for v in queries.workflow_versions(workflow)[:200]
        ]
    props = {
        "mode": "editor",
        "slug": slug,
        "definition": definition,
        "version": workflow.current_version.number if workflow and workflow.current_version else None,
        "versions": versions,
        "nodeTypes": _node_types(),
        "roles": roles(request.user),
    }
    return render(request, "webui/editor.html", {**_common(request), "props": props, "workflow": workflow})


def _with_positions(version) -> dict:
    """The version's definition with every node placed (saved positions, or the default layout)."""
    definition = dict(version.definition)
    try:
        layout = version_graph(version).layout()
    except EngineError:  # the registry changed since it was saved; the editor shows the errors
        layout = {}
    definition["nodes"] = [
        {**n, "position": n.get("position") or layout.get(n.get("id"), {"x": 0, "y": 0})}
        for n in definition.get("nodes", [])
    ]
    return definition


def _run_or_404(run_id) -> Run:
    try:
        return Run.objects.select_related("workflow", "version").get(pk=uuid.UUID(str(run_id)))
    except (ValueError, Run.DoesNotExist):
        raise Http404("no such run") from None


@login_required
def run_detail(request, run_id, node_id=None):
    _require_view(request)
    run = _run_or_404(run_id)
    snapshot = run_snapshot(run.pk)
    if node_id is not None and node_id not in {s["node_id"] for s in snapshot["steps"]}:
        raise Http404("no such step")
    props = {"mode": "run", "runId": str(run.pk), "step": node_id, "snapshot": snapshot,
             "roles": roles(request.user), "tab": request.GET.get("tab", "graph")}
    return render(request, "webui/run.html", {**_common(request), "props_script": props_script(props), "run": run})


@login_required
def run_step_inputs(request, run_id, node_id):
    """JSON for the step drawer: the step's config rendered from the run inputs and the upstream
    outputs as they are now, with those outputs."""
    _require_view(request)
    run = _run_or_404(run_id)
    if not StepRun.objects.filter(run_id=run.pk, node_id=node_id).exists():
        raise Http404("no such step")
    return JsonResponse(step_inputs(run, node_id))


def _runs_context(request) -> dict:
    workflow = request.GET.get("workflow", "").strip()
    status = request.GET.get("status", "").strip()
    since = request.GET.get("since", "").strip()
    trigger = request.GET.get("trigger", "").strip()
    qs = queries.runs_filter(
        workflow=workflow or None,
        status=status if status in RunStatus.values else None,
        started_after=timezone.now() - SINCE[since] if since in SINCE else None,
        trigger=trigger if trigger in TRIGGER_KINDS else None,
    )
    return {
        "runs": run_rows(qs.order_by("-created_at")[:RUN_PAGE_SIZE]),
        "filters": {"workflow": workflow, "status": status, "since": since, "trigger": trigger},
        "statuses": RunStatus.values,
        "triggers": TRIGGER_KINDS,
        "since_choices": list(SINCE),
        "workflow_slugs": list(Workflow.objects.order_by("slug").values_list("slug", flat=True)[:500]),
    }


@login_required
def run_list(request):
    _require_view(request)
    context = {**_common(request), **_runs_context(request), "props": {"mode": "runs"}}
    if request.GET.get("partial") == "rows":
        return render(request, "webui/_run_rows.html", context)
    return render(request, "webui/runs.html", context)


@login_required
def queue_list(request):
    _require_view(request)
    context = {**_common(request), "queues": queue_stats(), "props": {"mode": "queues"}}
    if request.GET.get("partial") == "rows":
        return render(request, "webui/_queue_rows.html", context)
    return render(request, "webui/queues.html", context)


@login_required
def limit_list_page(request):
    _require_view(request)
    context = {**_common(request), "limits": limit_list(), "props": {"mode": "limits"}}
    if request.GET.get("partial") == "rows":
        return render(request, "webui/_limit_rows.html", context)
    return render(request, "webui/limits.html", context)


@login_required
def credential_list_page(request):
    """The credentials page: the island lists, creates, rotates and deletes them through /api/credentials/ (which
    never returns a secret)."""
    _require_view(request)
    props = {"mode": "credentials", "kinds": Credential.Kind.values,
             "roles": {**roles(request.user), "use_credentials": can_use_credentials(request.user)}}
    return render(request, "webui/credentials.html", {**_common(request), "props": props})
