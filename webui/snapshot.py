"""The state of a run as the browser draws it: definition, steps, attempts and the last event seq.

Read ``last_seq`` first, then the steps: the steps are then at least as new as ``last_seq``, so
applying the events after it (idempotent status assignments) never loses a transition.

Its steps and attempts keep their timestamps as values and a step's waiting detail as the JSON text read:
``snapshot_json`` writes them (api.rawjson, timestamps as Python's isoformat writes them). A 1,000-step run's
page spent 80 ms of CPU a request, a third of it encoding its props.
"""

from __future__ import annotations

from django.db.models import TextField
from django.db.models.functions import Cast
from django.utils.html import mark_safe

from api.rawjson import dumps, raw_or_none
from engine.core.versions import version_graph
from engine.integrations.llm_providers import run_usage
from engine.models import Run, StepRun
from engine.nodes.repeat import definition_repeat_risks
from engine.services.queries import run_attempts, run_critical_path

STEP_FIELDS = (
    "node_id", "node_type", "queue", "status", "attempt", "error", "waiting_reason", "worker", "queued_at",
    "started_at", "finished_at", "lease_expires_at", "heartbeat_at", "next_attempt_at", "wake_at",
)


def _iso(value):
    return value.isoformat() if value is not None else None


def run_summary(run: Run) -> dict:
    return {
        "id": str(run.pk),
        "workflow": run.workflow.slug,
        "workflow_name": run.workflow.name,
        "version": run.version.number,
        "status": run.status,
        "inputs": run.inputs,
        "outputs": run.outputs,
        "error": run.error,
        "concurrency_key": run.concurrency_key,
        "waiting": run.waiting,
        "priority": run.priority,
        "durability": run.durability,
        "created_by": run.created_by.get_username() if run.created_by_id else "",
        "trigger": run.trigger or {},
        "created_at": _iso(run.created_at),
        "started_at": _iso(run.started_at),
        "finished_at": _iso(run.finished_at),
        "last_seq": run.last_seq,
    }


def _usage(run_id) -> dict:
    """The run's LLM tokens and cost (SQL sums arrive as Decimal; the socket sends JSON)."""
    return {k: float(v) if k in ("cost_usd", "latency_ms") else int(v) for k, v in run_usage(run_id).items()}


def _current_number(run: Run) -> int | None:
    version = run.workflow.current_version
    return version.number if version is not None else None


def run_snapshot(run_id) -> dict:
    """Everything the run view needs to draw a run; raises Run.DoesNotExist."""
    run = Run.objects.select_related("workflow__current_version", "version", "created_by").get(pk=run_id)
    steps = list(StepRun.objects.filter(run_id=run.pk).values(*STEP_FIELDS, waiting=Cast("waiting_detail", TextField()))
                 .order_by("id"))
    for step in steps:
        step["waiting_detail"] = raw_or_none(step.pop("waiting"))
    attempts = [
        {"node_id": node_id, "number": number, "queued_at": queued, "started_at": started, "finished_at": finished,
         "outcome": outcome, "worker": worker}
        for node_id, number, queued, started, finished, outcome, worker in run_attempts(run)
        .values_list("step__node_id", "number", "queued_at", "started_at", "finished_at", "outcome", "worker")
        .order_by("step_id", "number")
    ]
    definition = run.version.definition
    return {
        "run": {**run_summary(run), "usage": _usage(run.pk), "current_version": _current_number(run)},
        "definition": {"nodes": definition.get("nodes", []), "edges": definition.get("edges", []),
                       "inputs": definition.get("inputs")},
        "repeat_risks": definition_repeat_risks(definition),
        "layout": version_graph(run.version).layout(),
        "steps": steps,
        "attempts": attempts,
        # The server's critical path (engine.services.queries.run_critical_path), so the graph and the
        # timeline show the one the API gives.
        "critical_path": run_critical_path(run),
        "last_seq": run.last_seq,
    }


def snapshot_json(value) -> str:
    """``value`` (a dict holding a snapshot) as JSON text: timestamps as isoformat writes them, JSON columns as
    read."""
    return dumps(value, utc_z=False).decode()


_SCRIPT_ESCAPES = (("&", "\\u0026"), ("<", "\\u003C"), (">", "\\u003E"))


def props_script(props: dict) -> str:
    """``props`` in a ``<script id="weft-props">`` element, escaped as Django's json_script escapes."""
    text = snapshot_json(props)
    for char, escape in _SCRIPT_ESCAPES:
        text = text.replace(char, escape)
    return mark_safe(f'<script id="weft-props" type="application/json">{text}</script>')  # noqa: S308 (escaped)
