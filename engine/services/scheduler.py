"""Run and step lifecycle: starting runs, and the operator actions (retry, rerun, skip, complete, approve,
cancel). What a step's outcome does to its successors is engine.core.outcomes."""

from __future__ import annotations

import contextlib
import hashlib
import json

import jsonschema
from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import DateTimeField, Func
from django.db.models.functions import Now

from engine.core import concurrency, hotpath
from engine.core.durability import run_durability
from engine.core.inline import is_inline
from engine.core.mapping import ITEM_BROKEN, item_of, map_refresh, map_reopen
from engine.core.outcomes import dispatch_ready, edge_outcome, propagate
from engine.core.readiness import (
    FAILED,
    SKIPPED,
    SUCCEEDED,
)
from engine.core.runtx import RunTx, StepRef, steps_insert, steps_recount
from engine.core.security import OutputInvalid, json_for_storage, output_problem
from engine.core.versions import version_graph
from engine.exceptions import (
    IdempotencyConflict,
    InputsInvalid,
    InvalidTransition,
    NotFound,
    StepOutputInvalid,
)
from engine.models import Attempt, JournalEntry, Run, StepRun, Workflow
from engine.services.run_versions import run_version_move
from engine.states import (
    RUN_REOPENABLE,
    RUN_TERMINAL,
    STEP_ACTIVE,
    STEP_IDLE,
    STEP_SETTLEABLE,
    STEP_TERMINAL,
    TRIGGER_KINDS,
    RunStatus,
    StepStatus,
)

S = StepStatus

# -- starting runs ------------------------------------------------------------------------------


def inputs_hash(inputs: dict) -> str:
    return hashlib.sha256(json.dumps(inputs, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def run_start(
    *,
    workflow: Workflow | str,
    inputs: dict | None = None,
    idempotency_key: str | None = None,
    actor=None,
    parent_step: StepRun | None = None,
    version_number: int | None = None,
    trigger: dict | None = None,
    priority: int | None = None,
) -> tuple[Run, bool]:
    """Start a run of the workflow's current version (or of ``version_number``). Returns (run, created).

    ``trigger`` records how the run started ({"kind": ..., ...}, see states.TRIGGER_KINDS); without one, a run
    with a parent step is a sub-workflow's and any other a manual one. The user who started it is added.

    ``priority`` orders its steps in their queues (engine.core.queues); without one, a sub-workflow's run takes its
    parent run's and any other its definition's.

    With an idempotency key, the same key and the same inputs return the existing run;
    the same key with different inputs raises IdempotencyConflict.
    """
    if isinstance(workflow, str):
        try:
            workflow = Workflow.objects.select_related("current_version").get(slug=workflow)
        except Workflow.DoesNotExist:
            raise NotFound(f"workflow {workflow!r} does not exist") from None
    if workflow.archived:
        raise InvalidTransition(f"workflow {workflow.slug!r} is archived; restore it to start runs")
    if version_number is None:
        version = workflow.current_version
    else:
        version = workflow.versions.filter(number=version_number).first()
        if version is None:
            raise NotFound(f"workflow {workflow.slug!r} has no version {version_number}")
    if version is None:
        raise InvalidTransition(f"workflow {workflow.slug!r} has no saved version")
    inputs = {} if inputs is None else inputs
    _check_input_size(inputs)
    _check_inputs(version.definition.get("inputs") or {"type": "object"}, inputs)
    digest = inputs_hash(inputs)
    if idempotency_key:
        existing = _existing_run(workflow, idempotency_key, digest)
        if existing:
            return existing, False
    graph = version_graph(version)
    spec = graph.concurrency
    key = concurrency.key_render(spec, inputs) if spec is not None else None  # InputsInvalid: nothing started
    fields = {"workflow": workflow, "version": version, "status": RunStatus.PENDING, "inputs": inputs,
              "idempotency_key": idempotency_key or None, "request_hash": digest, "parent_step": parent_step,
              "created_by": actor if getattr(actor, "pk", None) else None,
              "trigger": run_trigger(trigger, actor=actor, parent_step=parent_step),
              "durability": run_durability(graph, settings.WEFT_QUEUES),
              "priority": _run_priority(priority, graph, parent_step)}
    try:
        if spec is None and not graph.limited and not any(
                is_inline(graph.nodes[root].type) or graph.nodes[root].for_each is not None
                for root in graph.roots()):  # in one statement
            # Inside a caller's transaction, a failure (a reused idempotency key) must not abort the caller's.
            with transaction.atomic() if connection.in_atomic_block else contextlib.nullcontext():
                return hotpath.run_start_one(Run(**fields), graph, _new_steps(graph), actor=_actor_name(actor)), True
        with transaction.atomic():
            if spec is not None:
                concurrency.group_lock(workflow.pk, key)
            run = Run.objects.create(**fields, concurrency_key=key, unfinished_steps=len(graph.nodes))
            steps = steps_insert(run_id=run.pk, steps=_new_steps(graph))
            if spec is not None:
                return _run_start_grouped(run, spec, actor=_actor_name(actor)), True
            roots = set(graph.roots())
            with RunTx(run.pk, actor=_actor_name(actor), new_run=run) as tx:
                tx.run_set_status(RunStatus.RUNNING, started_at=Now())
                dispatch_ready(tx, [StepRef(pk, node_id, S.PENDING, 0) for pk, node_id in steps if node_id in roots])
    except IntegrityError:
        if not idempotency_key:
            raise
        existing = _existing_run(workflow, idempotency_key, digest)
        if existing is None:
            raise
        return existing, False
    return run, True  # as the run's transaction left it (RunTx read the row back)


def _run_start_grouped(run: Run, spec, *, actor: str) -> Run:
    """A new run of a workflow with run concurrency, inserted pending in this transaction under its group's lock
    (engine.core.concurrency): it starts, waits, is cancelled at once, or cancels the group's earliest started
    runs, as its strategy says. Returns it as it is now."""
    key = run.concurrency_key
    # Waiting runs start in the order they reached the lock: the database's clock, not the starting host's.
    Run.objects.filter(pk=run.pk).update(created_at=Func(function="clock_timestamp", output_field=DateTimeField()))
    running = concurrency.group_running(run.workflow_id, key)
    group = concurrency.group_name(key)
    if spec.strategy == "queue":
        if run.pk not in concurrency.runs_admit(run.workflow_id, key, actor=actor):  # older waiting runs first
            concurrency.run_wait(run.pk, actor=actor)
    elif spec.strategy == "cancel_newest" and len(running) >= spec.limit:
        run_cancel(run_id=run.pk, actor=actor,
                   reason=f"not started: {len(running)} run(s) of {group} already running, the concurrency limit "
                          f"of {spec.limit} (strategy cancel_newest)")
    else:
        if spec.strategy == "cancel_in_progress":
            for victim in running[:max(len(running) + 1 - spec.limit, 0)]:
                with contextlib.suppress(InvalidTransition):  # it finished meanwhile: its place is free
                    run_cancel(run_id=victim, actor=concurrency.ACTOR,
                               reason=f"cancelled by run {run.pk}: at most {spec.limit} run(s) of {group} at once "
                                      "(concurrency strategy cancel_in_progress)")
        concurrency.run_begin(run.pk, actor=actor)
    return Run.objects.select_related("workflow", "version").get(pk=run.pk)


def _run_priority(priority: int | None, graph, parent_step: StepRun | None) -> int:
    if priority is not None:
        return priority
    if parent_step is not None:
        return Run.objects.filter(pk=parent_step.run_id).values_list("priority", flat=True).first() or 0
    return graph.priority


def run_trigger(trigger: dict | None, *, actor=None, parent_step: StepRun | None = None) -> dict:
    """The ``trigger`` a new run records: the given one (or manual, or subworkflow for a child run) with the
    starting user's name when there is one (a child run names its parent run and step instead)."""
    if trigger is None:
        trigger = {"kind": "subworkflow"} if parent_step is not None else {"kind": "manual"}
    if trigger.get("kind") not in TRIGGER_KINDS:
        raise ValueError(f"unknown trigger kind {trigger.get('kind')!r}")
    trigger = dict(trigger)
    if parent_step is not None:
        trigger.setdefault("parent_run", str(parent_step.run_id))
        trigger.setdefault("parent_step", parent_step.node_id)
    name = _actor_name(actor)
    if name and parent_step is None and "user" not in trigger:
        trigger["user"] = name
    return trigger


def _new_steps(graph) -> list[dict]:
    """A new run's steps, one per node in definition order: what runs.steps_insert (and hotpath) insert."""
    return [{"node_id": node.id, "node_type": node.type, "queue": node.queue,
             "upstream": len(graph.in_edges(node.id))} for node in graph.nodes.values()]


def _existing_run(workflow: Workflow, key: str, digest: str) -> Run | None:
    run = Run.objects.filter(workflow=workflow, idempotency_key=key).first()
    if run is not None and run.request_hash != digest:
        raise IdempotencyConflict(
            f"idempotency key {key!r} was already used to start run {run.pk} with different inputs"
        )
    return run


def _check_input_size(inputs) -> None:
    try:
        size = len(json_for_storage(inputs, what="run inputs").encode("utf-8"))
    except (OutputInvalid, TypeError) as exc:
        raise InputsInvalid(str(exc)) from None
    if size > settings.WEFT_MAX_INPUT_BYTES:
        raise InputsInvalid(f"run inputs are {size} bytes of JSON; the limit (WEFT_MAX_INPUT_BYTES) is "
                            f"{settings.WEFT_MAX_INPUT_BYTES}", details=[{"limit": settings.WEFT_MAX_INPUT_BYTES}])


def _check_inputs(schema: dict, inputs: dict) -> None:
    if not isinstance(inputs, dict):
        raise InputsInvalid("run inputs must be a JSON object")
    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(inputs), key=lambda e: list(e.absolute_path))
    if errors:
        details = [
            {"path": "inputs" + "".join(f"[{p!r}]" for p in e.absolute_path), "message": e.message} for e in errors
        ]
        raise InputsInvalid(
            f"run inputs fail the workflow's input schema: {details[0]['path']}: {details[0]['message']}",
            details=details,
        )


def _actor_name(actor) -> str:
    if actor is None:
        return ""
    if isinstance(actor, str):
        return actor
    return getattr(actor, "username", "") or str(actor)


# -- operator actions ---------------------------------------------------------------------------


def _load(tx: RunTx, node_id: str) -> StepRun:
    """The step of ``node_id``: a node of the run's graph, or an item ``x[i]`` of its mapped node x."""
    item = item_of(node_id)
    if node_id not in tx.graph.nodes and (item is None or item[0] not in tx.graph.nodes
                                          or tx.graph.nodes[item[0]].for_each is None):
        raise NotFound(f"run {tx.run.pk} has no step {node_id!r}")
    return tx.step(node_id)


def _mapped(tx: RunTx, step: StepRun) -> bool:
    """Whether ``step`` is a mapped node's step or one of its items."""
    return tx.graph.node(step.node_id).for_each is not None


def _map_parent(tx: RunTx, item: StepRun) -> StepRun:
    """An item's mapped node's step, reopened (failed -> waiting) if it failed; an item of a node that succeeded
    or was settled by hand is left alone."""
    parent = tx.step(item_of(item.node_id)[0])
    if parent.status not in (S.WAITING, S.FAILED) or (parent.status == S.WAITING and parent.waiting_reason != "map"):
        raise InvalidTransition(f"step {parent.node_id!r} is {parent.status}; its items can be acted on while it "
                                "waits for them or after it failed (rerun it to run its items again)")
    _reopen_run(tx)
    if parent.status == S.FAILED:
        _reset_downstream(tx, parent.node_id, statuses={S.UPSTREAM_FAILED, S.CANCELLED})
        map_reopen(tx, parent)
    return parent


def _map_moved_on(tx: RunTx, parent: StepRun) -> None:
    """Items changed by an operator: refill the map's slots, and settle and propagate the node if it is done."""
    for node_id, outcome, output in map_refresh(tx, parent):
        propagate(tx, node_id, outcome, output)


def _map_retry(tx: RunTx, step: StepRun) -> None:
    """Retry a mapped node's failed items: those of the node (its own step failed), or one item. The node waits
    for them again; with max_parallel, retried items wait for a slot."""
    if item_of(step.node_id) is None:
        if step.status != S.FAILED:
            raise InvalidTransition(f"step {step.node_id!r} is {step.status}; only a failed step can be retried")
        retried = list(StepRun.objects.filter(map_parent_id=step.pk, status__in=ITEM_BROKEN)
                       .only("id", "node_id", "status", "attempt"))
        if not retried:  # for_each itself failed: render it again
            _reopen_run(tx)
            tx.event("step.retry_requested", step.node_id, attempt=step.attempt)
            _reset_downstream(tx, step.node_id, statuses={S.UPSTREAM_FAILED, S.CANCELLED})
            tx.step_set_status(step, S.PENDING, output=None, error="", finished_at=None)
            dispatch_ready(tx, [StepRef(step.pk, step.node_id, S.PENDING, step.attempt)])
            return
        parent = step
        _reopen_run(tx)
        _reset_downstream(tx, parent.node_id, statuses={S.UPSTREAM_FAILED, S.CANCELLED})
        map_reopen(tx, parent)
    else:
        in_doubt = step.status == S.WAITING and step.waiting_reason == "in_doubt"
        if step.status != S.FAILED and not in_doubt:
            raise InvalidTransition(f"step {step.node_id!r} is {step.status}; only a failed step or one in doubt "
                                    "can be retried")
        parent = _map_parent(tx, step)
        if in_doubt:
            JournalEntry.objects.filter(step=step, status=JournalEntry.Status.STARTED).update(safe_to_repeat=True)
            tx.event("step.retry_requested", step.node_id, attempt=step.attempt)
            StepRun.objects.filter(pk=step.id).update(waiting_reason="", waiting_detail=None, wake_at=None)
            tx.queue(step, next_attempt=step.attempt + 1)
            return
        retried = [step]
    for item in retried:
        tx.event("step.retry_requested", item.node_id, attempt=item.attempt)
        tx.step_set_status(item, S.PENDING, output=None, finished_at=None)
    _map_moved_on(tx, parent)


def _map_settle_item(tx: RunTx, item: StepRun, to: str, *, output=None, event: dict | None = None) -> None:
    """An operator skips or completes one item of a mapped node."""
    if item.status not in STEP_SETTLEABLE:
        raise InvalidTransition(f"step {item.node_id!r} is {item.status}; cannot mark it {to}")
    parent = _map_parent(tx, item)
    tx.step_set_status(item, to, event=event, output=output, error="", lease_expires_at=None, waiting_reason="",
                       waiting_detail=None, wake_at=None)
    _map_moved_on(tx, parent)


def _map_cancel_items(tx: RunTx, parent: StepRun) -> None:
    """A mapped node's step settled by hand: its idle items will not run (running ones finish, unheeded)."""
    for item in StepRun.objects.filter(map_parent_id=parent.pk, status__in=STEP_IDLE).only(
            "id", "node_id", "status", "attempt"):
        tx.step_set_status(item, S.CANCELLED, lease_expires_at=None)


def _require_run_open(tx: RunTx, action: str) -> None:
    if tx.run_status == RunStatus.CANCELLED:
        raise InvalidTransition(f"run {tx.run.pk} is cancelled; cannot {action}")
    if tx.run_status == RunStatus.PENDING:
        raise InvalidTransition(f"run {tx.run.pk} has not started (it waits for its concurrency limit); "
                                f"cannot {action}")


def _reopen_run(tx: RunTx) -> None:
    if tx.run_status in RUN_REOPENABLE:
        tx.run_set_status(RunStatus.RUNNING, finished_at=None, error="", outputs=None)


def _reset_downstream(tx: RunTx, node_id: str, *, statuses: set[str]) -> list[str]:
    """Put descendants of ``node_id`` in ``statuses`` back to pending, and recount the upstream
    counters of every pending descendant from the current state of its upstream steps.

    ``node_id`` itself counts as unfinished (it is about to run again or change outcome).
    Returns the descendants set back to pending.
    """
    descendants = tx.graph.descendants(node_id)
    if not descendants:
        return []
    rows = {s.node_id: s for s in StepRun.objects.filter(run_id=tx.run.pk, node_id__in=descendants)}
    active = [n for n, s in rows.items() if s.status in STEP_ACTIVE]
    reset = []
    for nid, step in rows.items():
        if step.status in statuses:
            tx.step_set_status(step, S.PENDING, event={"reason": f"upstream {node_id} changed"},
                               output=None, error="", finished_at=None)
            reset.append(nid)
    pending = {nid for nid, s in rows.items() if s.status == S.PENDING}
    unfinished = pending | {node_id} | set(active)
    # Outcomes of upstream steps outside the reset set, for recounting.
    upstream_ids = {e.source for nid in pending for e in tx.graph.in_edges(nid)} - unfinished
    upstream = {
        s.node_id: s
        for s in StepRun.objects.filter(run_id=tx.run.pk, node_id__in=upstream_ids).only("node_id", "status", "output")
    }
    updates = []
    for nid in pending:
        counts = {"remaining": 0, SUCCEEDED: 0, FAILED: 0, SKIPPED: 0}
        for edge in tx.graph.in_edges(nid):
            src = upstream.get(edge.source)
            if src is None or src.status not in STEP_TERMINAL:
                counts["remaining"] += 1
            else:
                counts[edge_outcome(tx, edge, src.status, src.output)] += 1
        updates.append((rows[nid].id, counts["remaining"], counts[SUCCEEDED], counts[FAILED], counts[SKIPPED]))
    if updates:
        steps_recount(counts=updates)
    return reset


def step_retry(*, run_id, node_id: str, actor=None, version: str = "run") -> StepRun:
    """Retry a failed step (or one in doubt): it runs again as a new attempt; its blocked
    descendants go back to pending; every other step keeps its output. ``version="current"`` first
    moves the run to its workflow's current version (engine.services.run_versions)."""
    with RunTx(run_id, actor=_actor_name(actor)) as tx:
        _require_run_open(tx, "retry a step")
        step = _load(tx, node_id)
        if _mapped(tx, step):
            _map_retry(tx, step)
            return StepRun.objects.get(pk=step.id)
        in_doubt = step.status == S.WAITING and step.waiting_reason == "in_doubt"
        if step.status != S.FAILED and not in_doubt:
            raise InvalidTransition(
                f"step {node_id!r} is {step.status}; only a failed step or one in doubt can be retried"
            )
        run_version_move(tx, version=version, action=f"retry {node_id!r}")
        _retry(tx, step, in_doubt=in_doubt)
    return StepRun.objects.get(pk=step.id)


def _retry(tx: RunTx, step: StepRun, *, in_doubt: bool = False, reset: frozenset = frozenset()) -> None:
    """``reset``: statuses of descendants to set back to pending besides upstream-failed and cancelled."""
    if in_doubt:
        JournalEntry.objects.filter(step=step, status=JournalEntry.Status.STARTED).update(safe_to_repeat=True)
    _reopen_run(tx)
    tx.event("step.retry_requested", step.node_id, attempt=step.attempt)
    _reset_downstream(tx, step.node_id, statuses={S.UPSTREAM_FAILED, S.CANCELLED, *reset})
    StepRun.objects.filter(pk=step.id).update(waiting_reason="", waiting_detail=None, wake_at=None)
    tx.queue(step, next_attempt=step.attempt + 1)


def run_retry_failed(*, run_id, actor=None, version: str = "run") -> list[str]:
    """Retry every failed step of a run in one action (each as ``step_retry`` does). A failed step
    downstream of another failed one (a trigger rule let it run) goes back to pending and runs once
    its upstream steps finish again. Returns the failed steps, in topological order."""
    with RunTx(run_id, actor=_actor_name(actor)) as tx:
        _require_run_open(tx, "retry failed steps")
        failed = set(StepRun.objects.filter(run_id=tx.run.pk, status=S.FAILED).values_list("node_id", flat=True))
        if not failed:
            raise InvalidTransition(f"run {tx.run.pk} has no failed step to retry")
        run_version_move(tx, version=version, action="retry the failed steps")
        order = [n for n in tx.graph.topological_order() if n in failed]
        for node_id in order:
            if not tx.graph.ancestors(node_id) & failed:
                _retry(tx, tx.step(node_id), reset=frozenset({S.FAILED}))
    return order


def step_rerun_from(*, run_id, node_id: str, actor=None, version: str = "run") -> list[str]:
    """Run a finished step and everything downstream of it again; other steps keep their outputs.
    Journals of the re-run steps are cleared: this is a fresh execution with new idempotency keys.
    ``version="current"`` first moves the run to its workflow's current version."""
    with RunTx(run_id, actor=_actor_name(actor)) as tx:
        _require_run_open(tx, "rerun steps")
        step = _load(tx, node_id)
        if item_of(node_id) is not None:
            raise InvalidTransition(f"step {node_id!r} is an item of a mapped node; retry it, or rerun the node")
        if step.status in STEP_ACTIVE or step.status == S.PENDING:
            raise InvalidTransition(f"step {node_id!r} is {step.status}; only a finished step can be rerun")
        descendants = tx.graph.descendants(node_id)
        busy = list(
            StepRun.objects.filter(run_id=tx.run.pk, node_id__in=descendants, status__in=STEP_ACTIVE)
            .values_list("node_id", flat=True)[:5]
        )
        if busy:
            raise InvalidTransition(f"downstream step(s) {', '.join(busy)} are still active; wait for them to finish")
        run_version_move(tx, version=version, action=f"rerun from {node_id!r}")
        _reopen_run(tx)
        tx.event("step.rerun_requested", node_id, descendants=sorted(descendants)[:200])
        reset = _reset_downstream(tx, node_id, statuses=STEP_TERMINAL)
        rerun_ids = [node_id, *reset]
        JournalEntry.objects.filter(step__run_id=tx.run.pk, step__node_id__in=rerun_ids).delete()
        from django.db.models import F

        StepRun.objects.filter(run_id=tx.run.pk, node_id__in=rerun_ids).update(generation=F("generation") + 1)
        StepRun.objects.filter(pk=step.id).update(output=None, error="")
        if _mapped(tx, step):  # its items start afresh when it is ready again
            tx.step_set_status(step, S.PENDING, finished_at=None)
            dispatch_ready(tx, [StepRef(step.pk, step.node_id, S.PENDING, step.attempt)])
        else:
            tx.queue(step, next_attempt=step.attempt + 1)
    return rerun_ids


def rerun_preview(*, run_id, node_id: str) -> list[str]:
    """The steps a rerun from ``node_id`` would run again (the step and every descendant), in order."""
    version_id = Run.objects.filter(pk=run_id).values_list("version_id", flat=True).first()
    if version_id is None:
        raise NotFound(f"run {run_id} does not exist")
    graph = version_graph(version_id)
    if node_id not in graph.nodes:
        raise NotFound(f"run {run_id} has no step {node_id!r}")
    chosen = graph.descendants(node_id) | {node_id}
    return [n for n in graph.topological_order() if n in chosen]


def _settle(tx: RunTx, step: StepRun, to: str, *, outcome: str, output=None, error: str = "",
            event: dict | None = None, allowed: set[str]) -> None:
    """Operator sets a step's outcome (succeeded, skipped or failed) and the run moves on from it."""
    if item_of(step.node_id) is not None:
        _map_settle_item(tx, step, to, output=output, event=event)
        return
    if step.status not in allowed:
        raise InvalidTransition(f"step {step.node_id!r} is {step.status}; cannot mark it {to}")
    if _mapped(tx, step):
        _map_cancel_items(tx, step)
    _reopen_run(tx)
    _reset_downstream(tx, step.node_id, statuses={S.UPSTREAM_FAILED, S.CANCELLED})
    tx.step_set_status(step, to, event=event, output=output, error=error, lease_expires_at=None,
                       waiting_reason="", waiting_detail=None, wake_at=None)
    propagate(tx, step.node_id, outcome, output)




def step_skip(*, run_id, node_id: str, actor=None) -> StepRun:
    with RunTx(run_id, actor=_actor_name(actor)) as tx:
        _require_run_open(tx, "skip a step")
        step = _load(tx, node_id)
        _settle(tx, step, S.SKIPPED, outcome=SKIPPED, allowed=STEP_SETTLEABLE)
    return StepRun.objects.get(pk=step.id)


def step_complete(*, run_id, node_id: str, output=None, actor=None) -> StepRun:
    """Mark a step succeeded with the given output (e.g. what an outside system really produced)."""
    problem = output_problem(output)
    if problem:
        raise StepOutputInvalid(problem)
    with RunTx(run_id, actor=_actor_name(actor)) as tx:
        _require_run_open(tx, "complete a step")
        step = _load(tx, node_id)
        _settle(tx, step, S.SUCCEEDED, outcome=SUCCEEDED, output=output, event={"manual": True},
                allowed=STEP_SETTLEABLE)
    return StepRun.objects.get(pk=step.id)


def _require_approval(step: StepRun, action: str) -> None:
    if step.status != S.WAITING or step.waiting_reason != "approval":
        what = f"{step.status}" + (f" ({step.waiting_reason})" if step.waiting_reason else "")
        raise InvalidTransition(f"step {step.node_id!r} is {what}, not waiting for approval; cannot {action} it")


def _decide_attempt(step: StepRun, outcome: str) -> None:
    """The attempt that parked the step for approval ends with the decision (it no longer says waiting);
    its finished_at stays when it parked, so the wait for the decision reads as the step waiting."""
    Attempt.objects.filter(step_id=step.id, number=step.attempt, outcome=Attempt.Outcome.WAITING).update(
        outcome=outcome)


def step_approve(*, run_id, node_id: str, comment: str = "", actor=None) -> StepRun:
    with RunTx(run_id, actor=_actor_name(actor)) as tx:
        step = _load(tx, node_id)
        _require_approval(step, "approve")
        output = {"approved": True, "comment": comment, "by": _actor_name(actor)}
        tx.step_set_status(step, S.SUCCEEDED, output=output, waiting_reason="", waiting_detail=None, wake_at=None,
                           event={"decision": "approved", "comment": comment})
        _decide_attempt(step, Attempt.Outcome.SUCCEEDED)
        propagate(tx, node_id, SUCCEEDED, output)
    return StepRun.objects.get(pk=step.id)


def step_reject(*, run_id, node_id: str, comment: str = "", actor=None) -> StepRun:
    with RunTx(run_id, actor=_actor_name(actor)) as tx:
        step = _load(tx, node_id)
        _require_approval(step, "reject")
        who = _actor_name(actor) or "an operator"
        error = f"rejected by {who}" + (f": {comment}" if comment else "")
        tx.step_set_status(step, S.FAILED, error=error, output={"approved": False, "comment": comment, "by": who},
                           waiting_reason="", waiting_detail=None, wake_at=None,
                           event={"decision": "rejected", "comment": comment})
        _decide_attempt(step, Attempt.Outcome.FAILED)
        propagate(tx, node_id, FAILED)
    return StepRun.objects.get(pk=step.id)


def run_cancel(*, run_id, actor=None, reason: str = "") -> Run:
    """Cancel a run: pending, queued, waiting and retry-waiting steps are cancelled; running steps see
    ``ctx.cancelled`` and stop at their next journal call."""
    with RunTx(run_id, actor=_actor_name(actor)) as tx:
        if tx.run_status in RUN_TERMINAL:
            raise InvalidTransition(f"run {run_id} is {tx.run_status}; only a pending or running run can be cancelled")
        tx.run_set_status(RunStatus.CANCELLED, finished_at=Now(), error=reason or "cancelled")
        for step in StepRun.objects.filter(run_id=tx.run.pk, status__in=STEP_IDLE).only(
            "id", "node_id", "status", "attempt"
        ):
            tx.step_set_status(step, S.CANCELLED, lease_expires_at=None)
    return Run.objects.get(pk=run_id)
