"""Nodes that wait without holding a worker: ``sleep``, ``approval``, ``subworkflow``.

Each returns ``Wait(...)``: the step is parked in ``waiting`` and the worker is free. A timer
(``wake_in``) is a durable ``wake_at`` on the step that recovery acts on, through the node type's
``on_wake``, whichever process is alive then.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from engine.core.context import Wait
from engine.core.registry import node_type

MAX_SUBWORKFLOW_DEPTH = 10


def _now() -> datetime:
    return datetime.now(UTC)


def _parse_time(text: str) -> datetime:
    try:
        when = datetime.fromisoformat(str(text).strip().replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"'until' must be an ISO 8601 time such as 2030-01-31T09:00:00Z, got {text!r}") from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


@node_type("sleep", label="Sleep", default_queue="fast")
class SleepNode:
    """Wait ``seconds``, or until the time ``until`` (ISO 8601; UTC when it has no offset), without holding
    a worker. The wake-up time is journaled on the first attempt, so a retried step does not start its
    sleep over, and it survives restarts: recovery wakes the step when it is due."""

    # Why the editor cannot test it alone (engine.services.node_tests).
    untestable = "a sleep waits inside a run, without a worker; start a run to try it"

    config_schema = {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "seconds": {"type": "number", "minimum": 0},
            "until": {"type": "string", "minLength": 1, "description": "ISO 8601 time (templated)"},
        },
        "oneOf": [{"required": ["seconds"]}, {"required": ["until"]}],
    }
    outputs = {"slept_until": "ISO 8601 time the sleep ended"}

    def run(self, ctx, config: dict):
        def deadline():
            if config.get("until") is not None:
                return _parse_time(config["until"]).isoformat()
            return (_now() + timedelta(seconds=float(config["seconds"]))).isoformat()

        until = ctx.step("deadline", deadline, safe_to_repeat=True)
        remaining = (datetime.fromisoformat(until) - _now()).total_seconds()
        if remaining <= 0:
            return {"slept_until": until}
        return Wait("sleep", detail={"until": until}, wake_in=remaining)

    def on_wake(self, steprun) -> dict:
        until = (steprun.waiting_detail or {}).get("until") or steprun.wake_at.isoformat()
        return {"outcome": "succeeded", "output": {"slept_until": until}}


@node_type("approval", label="Human approval", default_queue="fast")
class ApprovalNode:
    """Wait until an operator approves or rejects the step (API or UI), with an optional comment.
    Approval succeeds the step with ``{"approved": true, "comment", "by"}``; rejection fails it. With
    ``timeout_s``, no decision within that time applies ``on_timeout`` (default: reject)."""

    # Why the editor cannot test it alone (engine.services.node_tests).
    untestable = "an approval waits inside a run for a person to decide; start a run to try it"

    config_schema = {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "message": {"type": "string", "description": "what the approver is asked (templated)"},
            "details": {"description": "data shown to the approver (templated)"},
            "timeout_s": {"type": "number", "exclusiveMinimum": 0},
            "on_timeout": {"enum": ["approve", "reject"], "default": "reject"},
        },
    }
    outputs = {"approved": "true", "comment": "the approver's comment", "by": "who decided ('timeout' when none did)"}

    def run(self, ctx, config: dict):
        detail = {"message": config.get("message") or f"Approve step {ctx.node_id}?"}
        if config.get("details") is not None:
            detail["details"] = config["details"]
        if config.get("timeout_s"):
            detail.update(timeout_s=config["timeout_s"], on_timeout=config.get("on_timeout", "reject"))
        return Wait("approval", detail=detail, wake_in=config.get("timeout_s"))

    def on_wake(self, steprun) -> dict:
        detail = steprun.waiting_detail or {}
        waited = f"no decision within {detail.get('timeout_s', '?')} s"
        if detail.get("on_timeout") == "approve":
            return {"outcome": "succeeded",
                    "output": {"approved": True, "comment": f"approved automatically: {waited}", "by": "timeout"}}
        return {"outcome": "failed", "error": f"rejected automatically: {waited}"}


class SubworkflowFailed(Exception):
    """The child run failed or was cancelled."""


@node_type("subworkflow", label="Sub-workflow", default_queue="fast")
class SubworkflowNode:
    """Start a run of another workflow (the version named by ``version``, else its current version when
    the child starts; the child run pins it) with templated inputs, and wait for it without holding a
    worker. The child's outputs (``{sink node id: output}``) become this step's output; a failed or
    cancelled child fails this step. The child run links back to this step (``parent_step``); a retry of
    this step never starts a second child."""

    # Why the editor cannot test it alone (engine.services.node_tests).
    untestable = "a sub-workflow starts a run of another workflow; start a run to try it"

    config_schema = {
        "type": "object",
        "required": ["workflow"],
        "additionalProperties": False,
        "properties": {
            "workflow": {"type": "string", "minLength": 1, "description": "slug of the workflow to run"},
            "inputs": {"type": "object", "description": "the child run's inputs (templated)", "default": {}},
            "version": {"type": "integer", "minimum": 1,
                        "description": "run this version of the workflow; default: its current version"},
        },
    }
    outputs = {"description": "the child run's outputs: {sink node id: output}"}

    def run(self, ctx, config: dict):
        from engine.core.children import child_outcome

        def start(idempotency_key: str):
            from engine.models import StepRun

            parent = StepRun.objects.select_related("run").get(pk=ctx.step_id)
            _check_depth(parent)
            child, _ = ctx.run_start(workflow=config["workflow"], inputs=config.get("inputs") or {},
                                 idempotency_key=idempotency_key, actor="subworkflow", parent_step=parent,
                                 version_number=config.get("version"))
            return {"child_run": str(child.pk), "workflow": config["workflow"], "version": child.version.number}

        info = ctx.step("child", start)
        outcome = child_outcome(info["child_run"])
        if outcome is not None:  # already finished (or this is a retry after it finished)
            if outcome.succeeded:
                return outcome.outputs
            raise SubworkflowFailed(outcome.error)
        return Wait("subworkflow", detail=info)

    def validate_config(self, config: dict, *, node_id: str, upstream_ids: set[str], graph) -> list:
        from engine.models import Workflow
        from engine.templating import templates as templating

        slug = config.get("workflow")
        if not isinstance(slug, str) or templating.is_template(slug):
            return []
        if slug == graph.definition.get("slug"):
            return [("workflow", "a workflow cannot run itself as a sub-workflow")]
        workflow = Workflow.objects.filter(slug=slug).first()
        if workflow is None:
            return [("workflow", f"workflow {slug!r} does not exist")]
        number = config.get("version")
        if isinstance(number, int) and not workflow.versions.filter(number=number).exists():
            return [("version", f"workflow {slug!r} has no version {number}")]
        return []


def _check_depth(step) -> None:
    from engine.models import StepRun

    depth, parent_step_id = 0, step.run.parent_step_id
    while parent_step_id is not None:
        depth += 1
        if depth >= MAX_SUBWORKFLOW_DEPTH:
            raise SubworkflowFailed(f"sub-workflows are nested more than {MAX_SUBWORKFLOW_DEPTH} deep; "
                                    "is a workflow starting itself through another?")
        parent_step_id = StepRun.objects.filter(pk=parent_step_id).values_list("run__parent_step_id",
                                                                                flat=True).first()


@node_type("wait_for_event", label="Wait for event", default_queue="fast")
class WaitForEventNode:
    """Wait, without holding a worker, for an outside event (``POST /api/events/``) named ``event`` whose
    correlation ``key`` equals this step's rendered ``key`` (e.g. ``{{ inputs.ticket_id }}``). The event's
    payload becomes the output. An event that arrived after the run started, before the step began to wait,
    is received too (events are kept WEFT_EVENT_RETENTION_S). With ``timeout_s``, no event in that time
    applies ``timeout_outcome``: ``fail`` (default), or ``succeed`` with ``timeout_output`` as the output."""

    # Why the editor cannot test it alone (engine.services.node_tests).
    untestable = "waiting for an event happens inside a run; start a run to try it"

    config_schema = {
        "type": "object",
        "required": ["event"],
        "additionalProperties": False,
        "properties": {
            "event": {"type": "string", "minLength": 1, "maxLength": 200, "description": "the event's name"},
            "key": {"type": ["string", "number", "integer"],
                    "description": "correlation key the event must carry (templated); default empty"},
            "timeout_s": {"type": "number", "exclusiveMinimum": 0},
            "timeout_outcome": {"enum": ["fail", "succeed"], "default": "fail"},
            "timeout_output": {"description": "the output when the timeout succeeds the step (templated)"},
        },
    }
    outputs = {"description": "the event's payload"}

    def run(self, ctx, config: dict):
        from engine.core.eventwaits import REASON

        key = config.get("key", "")
        key = "" if key is None else str(key)
        if len(key) > 500:
            raise ValueError(f"the rendered key is {len(key)} characters; an event's key has at most 500")
        detail = {"event": config["event"], "key": key}
        if config.get("timeout_s"):
            detail.update(timeout_s=config["timeout_s"], timeout_outcome=config.get("timeout_outcome", "fail"))
            if "timeout_output" in config:
                detail["timeout_output"] = config["timeout_output"]
        return Wait(REASON, detail=detail, wake_in=config.get("timeout_s"))

    def on_wake(self, steprun) -> dict:
        detail = steprun.waiting_detail or {}
        waited = (f"no event {detail.get('event')!r} with key {detail.get('key')!r} within "
                  f"{detail.get('timeout_s', '?')} s")
        if detail.get("timeout_outcome") == "succeed":
            return {"outcome": "succeeded", "output": detail.get("timeout_output")}
        return {"outcome": "failed", "error": f"timed out: {waited}"}
