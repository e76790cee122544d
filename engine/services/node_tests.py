"""Testing one node from the editor with sample inputs: what it may be tested with, and the sample to start from.

A node is checked as a save checks it (its config schema, templates, its type's hooks, the credentials the
tester may use), inside a stand-in graph where every node its templates or the sample name is upstream of it.
The sample is what templates read: the workflow's ``inputs`` and upstream ``nodes.<id>.output``. The run itself
is engine.worker.trial.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from django.conf import settings

from engine.core import registry
from engine.core.graph import NodeSpec
from engine.exceptions import GraphInvalid, Issue, NodeNotTestable
from engine.models import Run, StepRun
from engine.services.workflows import graph_validate, workflow_get
from engine.templating import templates as templating

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# Fields of an editor's node that say what it does; its place on the canvas and its edges do not matter here.
_NODE_FIELDS = ("id", "type", "name", "config", "queue", "timeout_s", "for_each", "limits")


@dataclass(frozen=True)
class NodeTestSample:
    """What templates read (``inputs``, ``nodes``), and the run it comes from (None: no run had the nodes)."""

    context: dict
    run_id: str | None = None
    version: int | None = None


def node_test_check(*, slug: str, node: dict, context: dict, actor=None) -> NodeSpec:
    """The node as a save would accept it, or GraphInvalid with its problems; NodeNotTestable for a type
    that waits inside a run or starts one."""
    workflow_get(slug)
    node = {k: v for k, v in node.items() if k in _NODE_FIELDS}
    node_id = node.get("id")
    upstream = sorted(n for n in _named_nodes(node, context) if n != node_id and _IDENT.match(n))
    stub_queue = next(iter(settings.WEFT_QUEUES), "default")  # the stand-ins upstream must not fail themselves
    definition = {
        "name": "node test", "slug": "node-test",
        "nodes": [node, *({"id": n, "type": "noop", "queue": stub_queue} for n in upstream)],
        "edges": [{"source": n, "target": node_id} for n in upstream],
    }
    try:
        graph = graph_validate(definition, actor=actor)
    except GraphInvalid as exc:
        mine = [i for i in exc.errors
                if i.node == node_id or (i.node is None and (i.path or "").startswith("nodes[0]"))]
        raise GraphInvalid(mine or [Issue("node_invalid", f"node `{node_id}` cannot be tested as it is")]) from None
    spec = graph.nodes[node_id]
    refusal = getattr(registry.get_node_type(spec.type).cls, "untestable", None)
    if refusal:
        raise NodeNotTestable(f"node `{node_id}` cannot be tested on its own: {refusal}.")
    return spec


def _named_nodes(node: dict, context: dict) -> set[str]:
    named = set(context.get("nodes") or {})
    named |= templating.referenced_nodes(node.get("config") or {})
    if isinstance(node.get("for_each"), str):
        named |= templating.referenced_nodes(node["for_each"])
    return {n for n in named if isinstance(n, str)}


def node_test_sample(*, slug: str, node_id: str, upstream: list[str] | None = None) -> NodeTestSample:
    """Sample inputs for testing ``node_id``: the inputs of the workflow's last run and the outputs its steps
    had, of the nodes in ``upstream`` (default: every other node of that run). Without a run: no sample."""
    workflow = workflow_get(slug)
    run = Run.objects.filter(workflow=workflow).select_related("version").order_by("-created_at").first()
    if run is None:
        return NodeTestSample(context={})
    steps = StepRun.objects.filter(run=run).exclude(node_id=node_id).exclude(node_id__contains="[")
    if upstream is not None:
        steps = steps.filter(node_id__in=upstream)
    nodes = {nid: {"output": output, "status": status}
             for nid, output, status in steps.order_by("id").values_list("node_id", "output", "status")}
    return NodeTestSample(context={"inputs": run.inputs, "nodes": nodes}, run_id=str(run.pk),
                          version=run.version.number)
