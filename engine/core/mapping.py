"""Map: a node with ``for_each`` runs once per item of the list its template yields at run time.

When the node's step (the parent) becomes ready, ``map_start`` renders ``for_each``; the parent goes to
``waiting`` (reason ``map``) and one step per item is inserted under it (``map_parent``, ``map_index``,
``map_item``), with node id ``x[i]`` (engine.core.graph resolves it to node x). Each item is a step of its own:
its own attempts, retries, lease, journal and idempotency keys, and ``{{ item }}`` / ``{{ item_index }}`` in its
config. With ``max_parallel`` only that many items are queued or running at once: the first ones are queued
with the parent's change, and each item that finishes queues the next pending one, in the run's transaction.

The parent keeps its items' progress in ``waiting_detail``: ``items`` (how many), ``unfinished`` (items not
finished), ``pending_from`` (no pending item has a lower index), ``max_parallel`` and ``on_item_failure``.
When the last item finishes, the parent settles: succeeded with the items' outputs in item order (a skipped
item, and with ``on_item_failure: continue`` a failed one, gives ``null``), or failed, naming the failed
items. The finished parent keeps ``{"items": n, "failed": [indices]}`` in ``waiting_detail``.

Nothing here propagates to successors: the functions return ``(node id, outcome, output)`` for the parent,
for engine.core.outcomes (or an operator's action) to propagate.
"""

from __future__ import annotations

import json

from django.conf import settings
from django.db import connection

from engine.core.context import upstream_outputs
from engine.core.readiness import FAILED, SUCCEEDED
from engine.core.runtx import RunTx, StepRef
from engine.core.security import output_problem
from engine.core.transitions import Bound
from engine.exceptions import TemplateFailed
from engine.models import StepRun
from engine.statements import load
from engine.states import STEP_ACTIVE, STEP_TERMINAL, RunStatus, StepStatus
from engine.templating import templates as templating

S = StepStatus
MAP = "map"  # the waiting reason of a mapped node's step while its items run
_SQL = load(__file__, "sql/mapping.sql")
_INSERT = Bound(_SQL["map_items_insert"])
_PENDING = Bound(_SQL["map_items_pending"])
_COUNT = Bound(_SQL["map_items_count"])
# Items that did not give an output: they fail a map with on_item_failure "fail".
ITEM_BROKEN = frozenset({S.FAILED, S.UPSTREAM_FAILED, S.CANCELLED})


def item_node_id(node_id: str, index: int) -> str:
    return f"{node_id}[{index}]"


def item_of(node_id: str) -> tuple[str, int] | None:
    """(mapped node id, index) of an item's node id ``x[i]``; None for any other node id."""
    if not node_id.endswith("]"):
        return None
    parent, _, index = node_id[:-1].partition("[")
    return (parent, int(index)) if index.isdigit() else None


class MapFailed(Exception):
    pass


def for_each_items(tx: RunTx, node) -> list:
    """The list the node's ``for_each`` yields now; MapFailed with the reason otherwise."""
    upstream, nodes_ctx = upstream_outputs(run_id=tx.run.pk, graph=tx.graph, node=node, also=node.for_each)
    context = {"inputs": tx.run.inputs, "nodes": nodes_ctx, "upstream": upstream, "run": {"id": str(tx.run.pk)}}
    try:
        items = templating.render(node.for_each, context, path=f"nodes.{node.id}.for_each")
    except TemplateFailed as exc:
        raise MapFailed(f"node {node.id!r}: for_each: {exc.message}") from None
    if not isinstance(items, list):
        raise MapFailed(f"node {node.id!r}: for_each must yield a JSON list; it yielded {_kind(items)}")
    limit = settings.WEFT_MAX_MAP_ITEMS
    if len(items) > limit:
        raise MapFailed(f"node {node.id!r}: for_each yielded {len(items)} items; at most {limit} are allowed "
                        "(WEFT_MAX_MAP_ITEMS)")
    return items


def _kind(value) -> str:
    names = {dict: "an object", str: "a string", bool: "a boolean", int: "a number", float: "a number"}
    return "null" if value is None else names.get(type(value), type(value).__name__)


def map_start(tx: RunTx, step: StepRef) -> tuple | None:
    """A mapped node's pending step is ready: wait for its items, insert them and queue the first ones. An empty
    list succeeds at once with ``[]``; a failed template, a non-list or too long a list fails the step. Returns
    what to propagate, if the step finished."""
    node = tx.graph.nodes[step.node_id]
    try:
        items = for_each_items(tx, node)
    except MapFailed as exc:
        if tx.step_set_status(step, S.FAILED, error=str(exc), event={"error": str(exc)[:500]}):
            return (step.node_id, FAILED, None)
        return None
    if not items:
        detail = {"items": 0, "failed": []}
        if tx.step_set_status(step, S.SUCCEEDED, output=[], error="", waiting_detail=detail):
            return (step.node_id, SUCCEEDED, [])
        return None
    detail = {"items": len(items), "unfinished": len(items), "pending_from": 0, "max_parallel": node.max_parallel,
              "on_item_failure": node.on_item_failure}
    if not tx.step_set_status(step, S.WAITING, error="", waiting_reason=MAP, waiting_detail=detail,
                              event={"reason": MAP, "detail": {"items": len(items)}}):
        return None
    StepRun.objects.filter(map_parent_id=step.id).delete()  # a rerun's items start afresh
    generation = StepRun.objects.filter(pk=step.id).values_list("generation", flat=True).get()
    with connection.cursor() as cur:
        cur.execute(_INSERT.sql, _INSERT.params({
            "run": tx.run.pk, "node": node.id, "node_type": node.type, "queue": node.queue, "generation": generation,
            "parent": step.id, "items": json.dumps(items)}))
        rows = cur.fetchall()
    tx.unfinished_delta += len(rows)
    first = rows if node.max_parallel is None else rows[:node.max_parallel]
    tx.queue_ready([StepRef(pk, node_id, S.PENDING, 0) for pk, node_id, _ in first])
    _save(step.id, {**detail, "pending_from": len(first)})
    return None


def map_items_finished(tx: RunTx, item_ids: list[str]) -> list[tuple]:
    """Items ``x[i]`` reached a terminal status (as attempts' outcomes): count them on their parents, queue the
    next pending items in their slots, and settle each parent once no item is left. Returns what to propagate."""
    by_parent: dict[str, int] = {}
    for item_id in item_ids:
        node_id = item_of(item_id)[0]
        by_parent[node_id] = by_parent.get(node_id, 0) + 1
    follow = []
    for node_id, n in by_parent.items():
        parent = _parent(tx, node_id)
        if parent is None:
            continue
        detail = dict(parent.waiting_detail)
        detail["unfinished"] -= n
        if detail.get("max_parallel") and tx.run_status == RunStatus.RUNNING:
            detail["pending_from"] = _queue_pending(tx, parent, start=detail["pending_from"], n=n)
        if detail["unfinished"] <= 0:
            follow += _settle(tx, parent, detail)
        else:
            _save(parent.pk, detail)
    return follow


def map_refresh(tx: RunTx, parent: StepRun) -> list[tuple]:
    """After an operator's action on a map's items: recount them, fill the free slots with pending items, and
    settle the parent if no item is left. Returns what to propagate."""
    with connection.cursor() as cur:
        cur.execute(_COUNT.sql, _COUNT.params({"parent": parent.pk}))
        counts = {status: (n, lowest) for status, n, lowest in cur.fetchall()}
    detail = dict(parent.waiting_detail or {})
    unfinished = sum(n for status, (n, _) in counts.items() if status not in STEP_TERMINAL)
    active = sum(n for status, (n, _) in counts.items() if status in STEP_ACTIVE)
    pending, pending_from = counts.get(S.PENDING, (0, 0))
    limit = detail.get("max_parallel")
    room = pending if limit is None else max(0, min(pending, limit - active))
    detail["pending_from"] = _queue_pending(tx, parent, start=pending_from, n=room) if room else pending_from
    detail["unfinished"] = unfinished
    if unfinished == 0:
        return _settle(tx, parent, detail)
    _save(parent.pk, detail)
    return []


def map_reopen(tx: RunTx, parent: StepRun) -> None:
    """Put a mapped node's finished step back to waiting for its items (an operator acts on them): through
    pending, as the transition table allows, with the map's settings in its detail again."""
    node = tx.graph.nodes[parent.node_id]
    detail = {"items": (parent.waiting_detail or {}).get("items", 0), "unfinished": 0, "pending_from": 0,
              "max_parallel": node.max_parallel, "on_item_failure": node.on_item_failure}
    if parent.status != S.PENDING:
        tx.step_set_status(parent, S.PENDING, event={"reason": "map items reopened"}, output=None, error="",
                           finished_at=None)
    tx.step_set_status(parent, S.WAITING, waiting_reason=MAP, waiting_detail=detail,
                       event={"reason": MAP, "detail": {"items": detail["items"]}})
    parent.waiting_reason, parent.waiting_detail = MAP, detail


def _parent(tx: RunTx, node_id: str) -> StepRun | None:
    """The mapped node's step, if it is still waiting for its items."""
    parent = (StepRun.objects.filter(run_id=tx.run.pk, node_id=node_id)
              .only("id", "node_id", "status", "attempt", "waiting_reason", "waiting_detail").first())
    if parent is None or parent.status != S.WAITING or parent.waiting_reason != MAP:
        return None
    return parent


def _queue_pending(tx: RunTx, parent: StepRun, *, start: int, n: int) -> int:
    """Queue up to ``n`` pending items from index ``start`` on, in item order. Returns the new pending_from."""
    with connection.cursor() as cur:
        cur.execute(_PENDING.sql, _PENDING.params({"parent": parent.pk, "from": start, "n": n}))
        rows = cur.fetchall()
    tx.queue_ready([StepRef(pk, node_id, S.PENDING, attempt) for pk, node_id, attempt, _ in rows])
    return rows[-1][3] + 1 if rows else start


def _save(parent_id: int, detail: dict) -> None:
    StepRun.objects.filter(pk=parent_id).update(waiting_detail=detail)


def _settle(tx: RunTx, parent: StepRun, detail: dict) -> list[tuple]:
    """Every item finished: the parent succeeds with their outputs in item order, or fails naming the failed."""
    rows = list(StepRun.objects.filter(map_parent_id=parent.pk).order_by("map_index")
                .values_list("map_index", "status", "output", "error"))
    failed = [index for index, status, _, _ in rows if status in ITEM_BROKEN]
    finished = {"items": len(rows), "failed": failed}
    if failed and detail.get("on_item_failure", "fail") == "fail":
        first = next(error for _, status, _, error in rows if status in ITEM_BROKEN)
        named = ", ".join(item_node_id(parent.node_id, i) for i in failed[:20])
        more = f" and {len(failed) - 20} more" if len(failed) > 20 else ""
        error = (f"{len(failed)} of {len(rows)} map item(s) failed: {named}{more}"
                 + (f"; the first: {first}" if first else ""))[:20000]
        return _finish(tx, parent, S.FAILED, FAILED, None, error=error, detail=finished)
    output = [out if status == S.SUCCEEDED else None for _, status, out, _ in rows]
    problem = output_problem(output)
    if problem:
        return _finish(tx, parent, S.FAILED, FAILED, None, error=f"node {parent.node_id!r}: map output: {problem}",
                       detail=finished)
    return _finish(tx, parent, S.SUCCEEDED, SUCCEEDED, output, error="", detail=finished)


def _finish(tx: RunTx, parent: StepRun, to: str, outcome: str, output, *, error: str, detail: dict) -> list[tuple]:
    event = {"items": detail["items"], "failed": detail["failed"][:100]}
    if error:
        event["error"] = error[:500]
    if not tx.step_set_status(parent, to, output=output, error=error, waiting_reason="", waiting_detail=detail,
                              event=event):
        return []
    return [(parent.node_id, outcome, output)]
