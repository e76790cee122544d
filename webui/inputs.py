"""What a step's node receives: its config rendered the way a worker renders it (engine.worker.run), from
the run inputs and the upstream outputs as they are now, beside those outputs. Rendered inputs are not
stored per attempt, so for a step whose upstream steps were rerun since it ran, this shows what it
would receive now; the upstream outputs are listed with their statuses so that is visible."""

from __future__ import annotations

from engine.core.mapping import item_of
from engine.core.versions import version_graph
from engine.exceptions import EngineError
from engine.models import Run, StepRun
from engine.templating import templates as templating


def step_inputs(run: Run, node_id: str) -> dict:
    """An item of a mapped node (``x[i]``) gets its node's config with ``item`` and ``item_index`` as its worker
    renders them."""
    graph = version_graph(run.version)
    item = item_of(node_id)
    node = graph.nodes[item[0] if item else node_id]
    direct = {e.source for e in graph.in_edges(node.id)}
    referenced = templating.referenced_nodes(node.config)
    rows = StepRun.objects.filter(run_id=run.pk, node_id__in=direct | referenced).values_list(
        "node_id", "status", "output")
    nodes_ctx = {nid: {"output": output, "status": status} for nid, status, output in rows}
    upstream = {nid: nodes_ctx[nid]["output"] for nid in direct if nid in nodes_ctx}
    context = {"inputs": run.inputs, "nodes": nodes_ctx, "upstream": upstream, "run": {"id": str(run.pk)}}
    if item:
        context["item_index"], context["item"] = StepRun.objects.filter(run_id=run.pk, node_id=node_id).values_list(
            "map_index", "map_item").get()
    rendered, error = None, ""
    try:
        rendered = templating.render(node.config, context, path=f"nodes.{node.id}.config")
    except EngineError as exc:
        error = exc.message
    return {
        "node_id": node_id,
        "config": node.config,
        "templated": _has_template(node.config),
        "rendered": rendered,
        "render_error": error,
        "upstream": [
            {"node_id": nid, "status": nodes_ctx[nid]["status"], "output": nodes_ctx[nid]["output"],
             "direct": nid in direct, "referenced": nid in referenced}
            for nid in sorted(nodes_ctx)
        ],
        "run_inputs": run.inputs,
    }


def _has_template(value) -> bool:
    if isinstance(value, dict):
        return any(_has_template(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_template(v) for v in value)
    return templating.is_template(value)
