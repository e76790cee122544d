"""The workflows ``bench seed`` writes history for: six of about ten nodes (chains, a fan-out, a diamond), each
saved with two versions, and one of 1,000 nodes (a root, 998 in parallel, a join); and what each node's steps
write (outputs, log lines, journal keys), laid out once per workflow for engine.operations.seed."""

from __future__ import annotations

import json
from dataclasses import dataclass

from engine.core.versions import version_graph
from engine.models import Workflow, WorkflowVersion
from engine.services.workflows import workflow_save

ERRORS = {  # node type -> (error type, message) of a failed attempt
    "http": ("HttpStatusError", "HTTP 503 from https://api.example.com/v2/orders: Service Unavailable"),
    "llm": ("LLMRateLimited", "429 from the model provider: rate limit reached for gpt-4o-mini"),
    "python": ("ValueError", "invoice total does not match its lines (expected 1280.00, got 1208.00)"),
    "noop": ("RuntimeError", "worker lost its database connection"),
}
TYPES = ("http", "llm", "python", "noop")
# slug, share of runs, shape (upstream node indexes of each node), trigger kinds and their weights
WORKFLOWS = (
    ("seed-support-triage", 30, "fan", {"webhook": 6, "api": 3, "manual": 1}),
    ("seed-invoice-sync", 25, "chain", {"schedule": 5, "api": 4, "manual": 1}),
    ("seed-lead-enrichment", 15, "chain", {"event": 7, "api": 2, "manual": 1}),
    ("seed-webhook-ingest", 15, "diamond", {"webhook": 9, "manual": 1}),
    ("seed-nightly-report", 10, "fan", {"schedule": 19, "manual": 1}),
    ("seed-research-digest", 5, "diamond", {"manual": 6, "api": 4}),
)
SHAPES = {
    "chain": [[], [0], [1], [2], [3], [4], [5], [6], [7], [8]],
    "fan": [[], [0], [1], [1], [1], [1], [2, 3, 4, 5], [6], [7], [7]],
    "diamond": [[], [0], [1], [1], [2], [3], [4, 5], [6], [7], [8]],
}
WIDE_SLUG, WIDE_STEPS = "seed-wide", 1000


@dataclass
class Node:
    id: str
    type: str
    queue: str
    upstream: tuple[int, ...]
    descendants: frozenset[int]
    output: str  # JSON
    journal: tuple[str, ...]  # the keys of its journal entries
    reply: str = "null"  # JSON: a model call's message
    logs_ok: str = "[]"  # an attempt's log lines (JSON, with %f for their times): succeeded, failed
    logs_failed: str = "[]"


@dataclass
class Plan:
    """A seeded workflow: its versions (oldest first), its nodes in topological order, its runs' triggers."""

    slug: str
    workflow_id: int
    versions: list[int]
    nodes: list[Node]
    triggers: dict[str, int]
    outputs: str = "null"  # JSON: a succeeded run's outputs (its sinks')


def _definition(slug: str, shape: list[list[int]], version: int) -> dict:
    nodes, edges = [], []
    for i, upstream in enumerate(shape):
        kind = TYPES[i % len(TYPES)] if i else "http"
        nid = f"{kind}_{i}"
        config = {
            "http": {"url": f"https://api.example.com/v2/{slug}/{i}", "method": "GET"},
            "llm": {"prompt": f"Summarise for {slug} (v{version}): {{{{ inputs }}}}", "provider": "auto"},
            "python": {"function": "weft.take_note", "kwargs": {"title": f"step {i}", "text": "{{ inputs }}"}},
            "noop": {},
        }[kind]
        nodes.append({"id": nid, "type": kind, "config": config, "retry": {"max_attempts": 3}})
        edges += [{"source": nodes[u]["id"], "target": nid} for u in upstream]
    return {"name": slug.replace("-", " ").title(), "slug": slug, "nodes": nodes, "edges": edges}


def _wide_definition() -> dict:
    nodes = [{"id": "root", "type": "noop"}] + [{"id": f"m{i}", "type": "noop"} for i in range(WIDE_STEPS - 2)]
    nodes.append({"id": "join", "type": "noop"})
    edges = ([{"source": "root", "target": f"m{i}"} for i in range(WIDE_STEPS - 2)]
             + [{"source": f"m{i}", "target": "join"} for i in range(WIDE_STEPS - 2)])
    return {"name": "Seed wide", "slug": WIDE_SLUG, "nodes": nodes, "edges": edges}


def _output(node_type: str, i: int) -> str:
    return json.dumps({
        "http": {"status": 200, "body": {"id": 1000 + i, "items": [{"sku": "A-1", "qty": 2}], "next": None}},
        "llm": {"text": "The customer asks for a refund of a duplicate charge; tone: frustrated.",
                "model": "gpt-4o-mini", "finish_reason": "stop"},
        "python": {"note": f"step {i}", "saved": True},
        "noop": {},
    }[node_type])


def _journal_keys(node_type: str, i: int) -> tuple[str, ...]:
    if node_type == "llm":
        return ("completion",)
    if node_type == "python" and i % 2:
        return (f"fetch-{i}", f"store-{i}")
    return ()


def _plan(slug: str, definitions: list[dict], triggers: dict[str, int]) -> Plan:
    versions = []
    workflow = Workflow.objects.filter(slug=slug).first()
    if workflow is None:
        for d in definitions:
            workflow, version, _ = workflow_save(definition=d, note="seed")
            versions.append(version.pk)
    else:  # seeded before: the same workflow and versions
        versions = list(WorkflowVersion.objects.filter(workflow=workflow).order_by("number").values_list("pk",
                                                                                                         flat=True))
    graph = version_graph(versions[-1])
    order = graph.topological_order()
    index = {n: i for i, n in enumerate(order)}
    nodes = []
    for i, nid in enumerate(order):
        spec = graph.nodes[nid]
        output = _output(spec.type, i)
        error_type, message = ERRORS[spec.type]
        nodes.append(Node(id=nid, type=spec.type, queue=spec.queue,
                          upstream=tuple(index[e.source] for e in graph.in_edges(nid)),
                          descendants=frozenset(index[d] for d in graph.descendants(nid)),
                          output=output, journal=_journal_keys(spec.type, i),
                          reply=json.dumps({"role": "assistant", "content": json.loads(output).get("text", "")}),
                          logs_ok=_log_lines(nid, "response 200"), logs_failed=_log_lines(nid, message)))
    outputs = json.dumps({s: json.loads(nodes[index[s]].output) for s in graph.sinks()})
    return Plan(slug=slug, workflow_id=workflow.pk, versions=versions, nodes=nodes, triggers=triggers,
                outputs=outputs)


def _log_lines(node_id: str, last: str) -> str:
    """Three log lines of an attempt, as JSON with a %f for each line's time."""
    lines = [json.dumps({"t": 0, "level": "INFO", "msg": f"{node_id}: {text}"}).replace("%", "%%")
             .replace('"t": 0', '"t": %.3f') for text in ("started", "request sent", last)]
    return "[" + ", ".join(lines) + "]"


def seed_plans() -> tuple[list[tuple[Plan, int]], Plan]:
    """The seeded workflows (saved on first use, two versions each) with their shares, and the wide one."""
    plans = [(_plan(slug, [_definition(slug, SHAPES[shape], v) for v in (1, 2)], triggers), share)
             for slug, share, shape, triggers in WORKFLOWS]
    return plans, _plan(WIDE_SLUG, [_wide_definition()], {"manual": 1})
