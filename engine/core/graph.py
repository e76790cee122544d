"""Workflow definitions: JSON Schema, validation, and the immutable ``Graph`` built from them.

Plain Python (networkx + jsonschema), no Django imports: the scheduler, the API and the
tests call these as ordinary functions. The format is documented in docs/workflow-format.md.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import networkx as nx
from jsonschema import Draft202012Validator
from jsonschema.validators import validator_for

from engine.core.registry import NodeType
from engine.core.schema_messages import describe
from engine.exceptions import GraphInvalid, Issue

TRIGGER_RULES = ("all_success", "all_done", "one_success")
DEFAULT_TRIGGER_RULE = "all_success"
ON_ITEM_FAILURE = ("fail", "continue")
# What a run over its workflow's concurrency limit does (docs/limits.md, "Run concurrency").
CONCURRENCY_STRATEGIES = ("queue", "cancel_in_progress", "cancel_newest")
# A node's and a run's priority (engine.core.queues: the order steps are claimed in within a queue).
PRIORITY_MIN, PRIORITY_MAX = -1000, 1000
# A run's durability (engine.states.Durability; engine.core.durability): absent, its queues' default.
DURABILITIES = ("strict", "relaxed")
DEFAULT_INPUTS_SCHEMA = {"type": "object"}

# Layout spacing (pixels) for nodes that have no saved position.
LAYOUT_DX = 220
LAYOUT_DY = 120

_NULLABLE_STRING = {"type": ["string", "null"]}

_RETRY_SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "max_attempts": {"type": "integer", "minimum": 1, "default": 3},
        "backoff_s": {"type": "number", "minimum": 0, "default": 1},
        "backoff_factor": {"type": "number", "minimum": 1, "default": 2},
        "max_backoff_s": {"type": "number", "minimum": 0, "default": 300},
        "jitter": {"type": "number", "minimum": 0, "maximum": 1, "default": 0.1},
        "retry_on": {"type": "array", "items": {"type": "string", "minLength": 1}, "default": []},
    },
}

# The named limits a node's steps take (engine.core.limits); a key splits a limit into one bucket per value.
_LIMITS_SCHEMA = {
    "type": "array",
    "maxItems": 10,
    "items": {
        "type": "object",
        "additionalProperties": False,
        "required": ["name"],
        "properties": {
            "name": {"type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$"},
            "key": {"type": "string", "maxLength": 1000},
        },
    },
}

# At most ``limit`` runs of the workflow with the same rendered ``key`` running at once.
_CONCURRENCY_SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "required": ["limit"],
    "description": "at most `limit` runs with the same `key` (a template over the run's inputs) running at once",
    "properties": {
        "key": {"type": "string", "maxLength": 1000},
        "limit": {"type": "integer", "minimum": 1},
        "strategy": {"enum": list(CONCURRENCY_STRATEGIES), "default": "queue"},
    },
}

_NODE_SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "required": ["id", "type"],
    "properties": {
        "id": {"type": "string", "pattern": "^[A-Za-z_][A-Za-z0-9_-]{0,99}$"},
        "type": {"type": "string", "minLength": 1},
        "name": {"type": "string"},
        "config": {"type": "object", "default": {}},
        "queue": {"type": ["string", "null"], "minLength": 1},
        "retry": _RETRY_SCHEMA,
        "timeout_s": {"type": ["number", "null"], "exclusiveMinimum": 0},
        "trigger_rule": {"enum": list(TRIGGER_RULES), "default": DEFAULT_TRIGGER_RULE},
        # A map: one step per item of the list this template yields (docs/nodes.md, "Map over a list").
        "for_each": {"type": "string", "minLength": 1},
        "max_parallel": {"type": "integer", "minimum": 1},
        "on_item_failure": {"enum": list(ON_ITEM_FAILURE)},
        "limits": _LIMITS_SCHEMA,
        "priority": {"type": "integer", "minimum": PRIORITY_MIN, "maximum": PRIORITY_MAX, "default": 0},
        "position": {
            "type": "object",
            "additionalProperties": False,
            "required": ["x", "y"],
            "properties": {"x": {"type": "number"}, "y": {"type": "number"}},
        },
    },
}

_EDGE_SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "required": ["source", "target"],
    "properties": {
        "source": {"type": "string"},
        "target": {"type": "string"},
        "condition": _NULLABLE_STRING,
        "branch": _NULLABLE_STRING,
    },
}

# Inlined rather than $ref'd: resolving references per node costs more than the check itself.
DEFINITION_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "Weft workflow definition",
    "type": "object",
    "additionalProperties": False,
    "required": ["name", "slug", "nodes"],
    "properties": {
        "name": {"type": "string", "minLength": 1},
        "slug": {"type": "string", "pattern": "^[a-z0-9][a-z0-9-_]{0,99}$"},
        "description": {"type": "string"},
        "inputs": {"type": "object", "default": DEFAULT_INPUTS_SCHEMA},
        "nodes": {"type": "array", "items": _NODE_SCHEMA},
        "edges": {"type": "array", "items": _EDGE_SCHEMA, "default": []},
        "durability": {"enum": list(DURABILITIES),
                       "description": "strict: a step's records are on disk before anything depending on them "
                                      "starts; relaxed: they commit with synchronous_commit off (a PostgreSQL crash "
                                      "can lose the last moments of steps, which run again with the same "
                                      "idempotency keys). Absent: relaxed only if every queue the nodes use "
                                      "defaults to relaxed (WEFT_QUEUES), else strict."},
        "priority": {"type": "integer", "minimum": PRIORITY_MIN, "maximum": PRIORITY_MAX, "default": 0,
                     "description": "the runs' priority: within a queue, steps of higher-priority runs are claimed "
                                    "first (a step's priority is its run's plus its node's), aged by "
                                    "WEFT_PRIORITY_AGING_S so that lower ones are never starved"},
        "budget": {"type": "object", "additionalProperties": False,
                   "description": "the most a run may spend on model calls (checked before each call)",
                   "properties": {"max_cost_usd": {"type": "number", "exclusiveMinimum": 0},
                                  "max_tokens": {"type": "integer", "minimum": 1}}},
        "concurrency": _CONCURRENCY_SCHEMA,
    },
}

_DEFINITION_VALIDATOR = Draft202012Validator(DEFINITION_SCHEMA)
_MAX_MESSAGE = 300
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass(frozen=True, slots=True)
class NodeSpec:
    id: str
    type: str
    name: str
    config: dict
    queue: str  # resolved: the node's own queue, else its type's default_queue
    retry: dict
    timeout_s: float | None
    trigger_rule: str
    position: dict | None
    index: int  # position in the definition's nodes list
    for_each: str | None = None  # a template yielding the list a mapped node runs once per item of
    max_parallel: int | None = None  # at most this many of a mapped node's items queued or running at once
    on_item_failure: str = "fail"
    limits: tuple[tuple[str, str], ...] = ()  # (limit name, key template or "") per limit the node takes
    priority: int = 0


@dataclass(frozen=True, slots=True)
class Concurrency:
    """A workflow's run concurrency: at most ``limit`` runs per rendered ``key`` running at once."""

    key: str  # a template over the run's inputs; "" for one group for the whole workflow
    limit: int
    strategy: str  # one of CONCURRENCY_STRATEGIES

    @property
    def queues(self) -> bool:
        """Whether runs over the limit wait (and a finished run starts the next one)."""
        return self.strategy == "queue"


def _concurrency(raw) -> Concurrency | None:
    """The definition's ``concurrency`` (None without one, or when it is malformed: validation says why)."""
    if not isinstance(raw, dict) or not _positive_int(raw.get("limit")):
        return None
    strategy = raw.get("strategy", "queue")
    key = raw.get("key", "")
    if strategy not in CONCURRENCY_STRATEGIES or not isinstance(key, str):
        return None
    return Concurrency(key=key, limit=raw["limit"], strategy=strategy)


@dataclass(frozen=True, slots=True)
class EdgeSpec:
    source: str
    target: str
    condition: str | None
    branch: str | None
    index: int  # position in the definition's edges list

    @property
    def key(self) -> str:
        return f"{self.source}->{self.target}"


class Graph:
    """A validated workflow definition. Build one with ``validate()``; treat it as immutable."""

    def __init__(self, definition: dict, nodes: Iterable[NodeSpec], edges: Iterable[EdgeSpec],
                 warnings: Iterable[Issue] = ()):
        self.definition = definition
        self.nodes: dict[str, NodeSpec] = {n.id: n for n in nodes}
        self.edges: list[EdgeSpec] = list(edges)
        self.warnings: list[Issue] = list(warnings)
        self._in: dict[str, list[EdgeSpec]] = {n: [] for n in self.nodes}
        self._out: dict[str, list[EdgeSpec]] = {n: [] for n in self.nodes}
        for e in self.edges:
            self._out[e.source].append(e)
            self._in[e.target].append(e)
        self.dg = nx.DiGraph()
        self.dg.add_nodes_from(self.nodes)
        self.dg.add_edges_from((e.source, e.target) for e in self.edges)
        self._topo: list[str] | None = None
        self._sinks: list[str] | None = None
        # Whether any node takes a limit: a workflow without limits never reaches engine.core.limits.
        self.limited = any(n.limits for n in self.nodes.values())
        # Run concurrency: None for a workflow without it, whose runs start in one statement (engine.core.hotpath).
        self.concurrency = _concurrency(definition.get("concurrency"))
        # The definition's own durability, or None: its queues' default decides (engine.core.durability).
        durability = definition.get("durability")
        self.durability: str | None = durability if durability in DURABILITIES else None
        # Its runs' priority unless a run is started with its own (engine.services.scheduler.run_start).
        priority = definition.get("priority")
        self.priority = priority if type(priority) is int else 0

    def __repr__(self) -> str:
        return f"<Graph {self.definition.get('slug')!r}: {len(self.nodes)} nodes, {len(self.edges)} edges>"

    def node(self, step_node_id: str) -> NodeSpec:
        """The node a step runs: ``step_node_id``'s, or node x's for ``x[i]``, item i of mapped node x."""
        spec = self.nodes.get(step_node_id)
        if spec is not None:
            return spec
        node_id, bracket, rest = step_node_id.partition("[")
        if bracket and rest.endswith("]") and rest[:-1].isdigit() and node_id in self.nodes:
            return self.nodes[node_id]
        raise KeyError(step_node_id)

    def in_edges(self, node_id: str) -> list[EdgeSpec]:
        return list(self._in[node_id])

    def out_edges(self, node_id: str) -> list[EdgeSpec]:
        return list(self._out[node_id])

    def roots(self) -> list[str]:
        return [n for n, ins in self._in.items() if not ins]

    def sinks(self) -> list[str]:
        if self._sinks is None:  # asked on every success of a run's last step (engine.core.hotpath)
            self._sinks = [n for n, outs in self._out.items() if not outs]
        return list(self._sinks)

    def topological_order(self) -> list[str]:
        """Every node after all its upstream nodes; ties keep definition order."""
        if self._topo is None:
            index = {n: spec.index for n, spec in self.nodes.items()}
            self._topo = list(nx.lexicographical_topological_sort(self.dg, key=index.__getitem__))
        return list(self._topo)

    def descendants(self, node_id: str) -> set[str]:
        return nx.descendants(self.dg, node_id)

    def ancestors(self, node_id: str) -> set[str]:
        return nx.ancestors(self.dg, node_id)

    def critical_path(self, durations: Mapping[str, float]) -> list[str]:
        """The path whose node durations add up most (a missing duration counts as 0).

        Equivalent to networkx's dag_longest_path with each node's duration moved onto its
        out-edges, computed in one pass; ties go to the path with more nodes, then to
        definition order.
        """
        best: dict[str, tuple[float, int]] = {}
        prev: dict[str, str | None] = {}
        for n in self.topological_order():
            score, before = (0.0, 0), None
            for e in self._in[n]:
                if best[e.source] > score:
                    score, before = best[e.source], e.source
            best[n] = (score[0] + float(durations.get(n) or 0), score[1] + 1)
            prev[n] = before
        if not best:
            return []
        end = max(best, key=best.__getitem__)  # first maximum in topological order
        path = []
        node: str | None = end
        while node is not None:
            path.append(node)
            node = prev[node]
        return path[::-1]

    def layout(self) -> dict[str, dict[str, float]]:
        """Saved positions where present; the rest layered by topological generation."""
        index = {n: spec.index for n, spec in self.nodes.items()}
        out: dict[str, dict[str, float]] = {}
        for gen, layer in enumerate(nx.topological_generations(self.dg)):
            for row, n in enumerate(sorted(layer, key=index.__getitem__)):
                pos = self.nodes[n].position
                out[n] = {"x": pos["x"], "y": pos["y"]} if pos else {"x": gen * LAYOUT_DX, "y": row * LAYOUT_DY}
        return {n: out[n] for n in self.nodes}


def definition_checksum(definition: Any) -> str:
    """sha256 of the canonical JSON form: the same for the same content whatever the key order."""
    text = json.dumps(definition, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def validate(
    definition: Any,
    *,
    node_types: Mapping[str, NodeType],
    queues: Collection[str],
    max_nodes: int = 5000,
    check_expression: Callable[[str], str | None] | None = None,
    check_template: Callable[[str], str | None] | None = None,
) -> Graph:
    """Check a definition and build its Graph, or raise GraphInvalid listing every error found.

    ``check_expression`` says what is wrong with an edge condition, ``check_template`` with a template (the
    concurrency key); None when nothing is."""
    errors: list[Issue] = _schema_issues(definition)
    nodes_raw = definition.get("nodes") if isinstance(definition, dict) else None
    edges_raw = definition.get("edges", []) if isinstance(definition, dict) else None
    if not isinstance(nodes_raw, list) or not isinstance(edges_raw, list):
        raise GraphInvalid(errors)

    if isinstance(definition.get("inputs"), dict):
        errors.extend(_inputs_schema_issues(definition["inputs"]))
    errors.extend(_concurrency_issues(definition.get("concurrency"), check_template))

    too_many = len(nodes_raw) > max_nodes
    if too_many:
        errors.append(Issue("too_many_nodes", f"the workflow has {len(nodes_raw)} nodes; at most {max_nodes} "
                                              "are allowed", path="nodes"))
    elif not nodes_raw:
        errors.append(Issue("empty", "the workflow has no nodes", path="nodes"))

    nodes, node_ids = _check_nodes(nodes_raw, node_types, queues, check_config=not too_many, errors=errors)
    edges = _check_edges(edges_raw, nodes, node_ids, check_expression, errors=errors)

    graph = Graph(definition, nodes.values(), edges)
    errors.extend(_cycle_issues(graph))
    if errors:
        # The graph goes with the errors, so the checks that read the database can add theirs to the same list.
        raise GraphInvalid(errors, partial=None if too_many else graph)
    graph.warnings.extend(_disconnected_warnings(graph))
    return graph


# --- validation steps ------------------------------------------------------------------------


def _check_nodes(nodes_raw: list, node_types: Mapping[str, NodeType], queues: Collection[str], *,
                 check_config: bool, errors: list[Issue]) -> tuple[dict[str, NodeSpec], Collection[str]]:
    """Per-node checks. Returns the well-formed nodes (first of each id) for the graph, and every node id."""
    known_queues = queues if isinstance(queues, (set, frozenset, dict)) else set(queues)
    validators: dict[str, Any] = {}
    first_index: dict[str, int] = {}
    specs: dict[str, NodeSpec] = {}
    for i, node in enumerate(nodes_raw):
        if not isinstance(node, dict) or not isinstance(node.get("id"), str):
            continue  # the schema check has reported it
        node_id, at = node["id"], f"nodes[{i}]"
        if node_id in first_index:
            errors.append(Issue("duplicate_node", f"node `{node_id}`: two nodes have this id (nodes number "
                                                  f"{first_index[node_id] + 1} and {i + 1}); give each its own",
                                node=node_id, path=f"{at}.id"))
            continue
        first_index[node_id] = i

        type_name = node.get("type")
        ntype = node_types.get(type_name) if isinstance(type_name, str) else None
        if ntype is None and isinstance(type_name, str):
            errors.append(Issue("unknown_node_type", f"node `{node_id}`: `{type_name}` is not a known node type "
                                                     f"(known types: {_names(node_types) or 'none'})",
                                node=node_id, path=f"{at}.type"))

        config = node.get("config", {})
        if check_config and ntype is not None and isinstance(config, dict):
            validator = validators.get(type_name)  # one per node type per call, not one per node
            if validator is None:
                cls = validator_for(ntype.config_schema, default=Draft202012Validator)
                validator = validators[type_name] = cls(ntype.config_schema)
            for err in validator.iter_errors(config):
                path = _format_path([f"{at}.config", *err.absolute_path])
                errors.append(Issue("config_invalid", f"node `{node_id}`: {_short(describe(err, whole='config'))}",
                                    node=node_id, path=path))

        queue = node.get("queue")
        if queue is None and ntype is not None:
            queue = ntype.default_queue
            origin = f" (the default of node type `{ntype.name}`)"
        else:
            origin = ""
        if isinstance(queue, str) and queue and queue not in known_queues:
            errors.append(Issue("unknown_queue", f"node `{node_id}`: queue `{queue}`{origin} is not configured "
                                                 f"(queues: {_names(known_queues)})",
                                node=node_id, path=f"{at}.queue"))

        for field in ("max_parallel", "on_item_failure"):
            if field in node and "for_each" not in node:
                errors.append(Issue("map_invalid", f"node `{node_id}`: `{field}` applies to a mapped node only; "
                                                   "give the node `for_each` too", node=node_id, path=f"{at}.{field}"))

        # Kept even when broken, so edges and cycles are still checked (the graph leaves validate() only as
        # GraphInvalid.partial).
        specs[node_id] = _node_spec(node, i, type_name if isinstance(type_name, str) else "",
                                    queue if isinstance(queue, str) else "")
    return specs, first_index.keys()


def _node_spec(node: dict, index: int, type_name: str, queue: str) -> NodeSpec:
    name, config, retry, position = node.get("name"), node.get("config"), node.get("retry"), node.get("position")
    timeout_s = node.get("timeout_s")
    return NodeSpec(
        id=node["id"],
        type=type_name,
        name=name if isinstance(name, str) and name else node["id"],
        config=config if isinstance(config, dict) else {},
        queue=queue,
        retry=retry if isinstance(retry, dict) else {},
        timeout_s=timeout_s if isinstance(timeout_s, (int, float)) and not isinstance(timeout_s, bool) else None,
        trigger_rule=node.get("trigger_rule") if node.get("trigger_rule") in TRIGGER_RULES else DEFAULT_TRIGGER_RULE,
        position=position if isinstance(position, dict) else None,
        index=index,
        for_each=node.get("for_each") if isinstance(node.get("for_each"), str) else None,
        max_parallel=node.get("max_parallel") if _positive_int(node.get("max_parallel")) else None,
        on_item_failure=node.get("on_item_failure") if node.get("on_item_failure") in ON_ITEM_FAILURE else "fail",
        limits=_node_limits(node.get("limits")),
        priority=node.get("priority") if type(node.get("priority")) is int else 0,
    )


def _positive_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def _node_limits(raw) -> tuple[tuple[str, str], ...]:
    if not isinstance(raw, list):
        return ()
    return tuple((item["name"], item.get("key") if isinstance(item.get("key"), str) else "")
                 for item in raw if isinstance(item, dict) and isinstance(item.get("name"), str))


def _check_edges(edges_raw: list, nodes: Mapping[str, NodeSpec], node_ids: Collection[str],
                 check_expression: Callable[[str], str | None] | None, *, errors: list[Issue]) -> list[EdgeSpec]:
    """Per-edge checks; returns the edges that join two graph nodes, once each, for the graph.

    ``node_ids`` includes nodes left out of the graph for their own errors (an unknown type, ...):
    an edge to one of those is not reported again.
    """
    seen: dict[tuple[str, str], int] = {}
    specs: list[EdgeSpec] = []
    for k, edge in enumerate(edges_raw):
        if not isinstance(edge, dict):
            continue
        src, dst = edge.get("source"), edge.get("target")
        if not isinstance(src, str) or not isinstance(dst, str):
            continue
        key, at = f"{src}->{dst}", f"edges[{k}]"
        ok = True
        for end, node_id in (("source", src), ("target", dst)):
            if node_id not in node_ids:
                errors.append(Issue("unknown_edge_node", f"edge {key}: {end} `{node_id}` is not a node id",
                                    edge=key, path=f"{at}.{end}"))
                ok = False
        if src == dst:
            errors.append(Issue("self_loop", f"edge {key} connects node `{src}` to itself", node=src, edge=key,
                                path=at))
            ok = False
        elif (src, dst) in seen:
            errors.append(Issue("duplicate_edge", f"edge {key} appears twice (edges number {seen[(src, dst)] + 1} "
                                                  f"and {k + 1})",
                                edge=key, path=at))
            ok = False
        else:
            seen[(src, dst)] = k

        condition = edge.get("condition")
        if check_expression is not None and isinstance(condition, str) and condition.strip():
            problem = check_expression(condition)
            if problem:
                errors.append(Issue("condition_invalid", f"edge {key}: the condition `{_short(condition)}` is "
                                                         f"invalid: {_short(problem)}", edge=key,
                                    path=f"{at}.condition"))
        branch = edge.get("branch")
        if ok and src in nodes and dst in nodes:
            specs.append(EdgeSpec(src, dst, condition if isinstance(condition, str) and condition.strip() else None,
                                  branch if isinstance(branch, str) else None, k))
    return specs


def _cycle_issues(graph: Graph) -> list[Issue]:
    issues = []
    index = {n: spec.index for n, spec in graph.nodes.items()}
    components = [c for c in nx.strongly_connected_components(graph.dg) if len(c) > 1]
    for component in sorted(components, key=lambda c: min(index[n] for n in c)):
        members = sorted(component, key=index.__getitem__)
        # A small graph of just this component, built in definition order, so the cycle found is deterministic.
        sub = nx.DiGraph()
        sub.add_nodes_from(members)
        sub.add_edges_from((u, v) for u in members for v in graph.dg.succ[u] if v in component)
        loop = [u for u, _v in nx.find_cycle(sub, source=members[0])]
        text = " -> ".join([*loop, loop[0]])
        rest = [n for n in members if n not in set(loop)]
        if rest:
            text += f"; also caught in the same loop: {', '.join(rest)}"
        issues.append(Issue("cycle", f"the workflow has a cycle: {text}", node=loop[0]))
    return issues


def _disconnected_warnings(graph: Graph) -> list[Issue]:
    roots = graph.roots()
    if not roots:
        return []
    index = {n: spec.index for n, spec in graph.nodes.items()}
    warnings = []
    for component in nx.weakly_connected_components(graph.dg):
        if roots[0] in component:
            continue
        members = sorted(component, key=index.__getitem__)
        shown = _names(members[:20], order=False) + (f" and {len(members) - 20} more" if len(members) > 20 else "")
        warnings.append(Issue("disconnected", f"node(s) {shown} are not connected to the main part of the workflow "
                                              f"(the part that starts at `{roots[0]}`)", node=members[0]))
    return sorted(warnings, key=lambda w: index[w.node])


def _schema_issues(definition: Any) -> list[Issue]:
    issues = []
    for err in _DEFINITION_VALIDATOR.iter_errors(definition):
        parts = list(err.absolute_path)
        path = _format_path(parts) or None
        node = edge = None
        base, whole, where = [], "the definition", ""
        if len(parts) >= 2 and parts[0] in ("nodes", "edges") and isinstance(parts[1], int):
            base, whole = parts[:2], f"the {parts[0][:-1]}"
            where = f"{_format_path(base)}: "
            item = definition[parts[0]][parts[1]]
            if parts[0] == "nodes" and isinstance(item, dict) and isinstance(item.get("id"), str):
                node = item["id"]
                where = f"node `{node}`: "
            elif (parts[0] == "edges" and isinstance(item, dict) and isinstance(item.get("source"), str)
                  and isinstance(item.get("target"), str)):
                edge = f"{item['source']}->{item['target']}"
                where = f"edge {edge}: "
        issues.append(Issue("schema", f"{where}{_short(describe(err, base=base, whole=whole))}", node=node, edge=edge,
                            path=path))
    return issues


def _concurrency_issues(raw, check_template: Callable[[str], str | None] | None) -> list[Issue]:
    """A concurrency key template that does not parse (the schema checks the rest)."""
    key = raw.get("key") if isinstance(raw, dict) else None
    problem = check_template(key) if check_template is not None and isinstance(key, str) and key else None
    if problem:
        return [Issue("concurrency_key_invalid", f"concurrency.key: {_short(problem)}", path="concurrency.key")]
    return []


def _inputs_schema_issues(inputs: dict) -> list[Issue]:
    cls = validator_for(inputs, default=Draft202012Validator)
    issues = []
    for err in cls(cls.META_SCHEMA).iter_errors(inputs):
        path = _format_path(["inputs", *err.absolute_path])
        issues.append(Issue("schema", f"{path}: inputs is not a valid JSON Schema: {_short(err.message)}", path=path))
    return issues


def _format_path(parts: Iterable[Any]) -> str:
    """['nodes', 3, 'retry', 'max_attempts'] -> 'nodes[3].retry.max_attempts'."""
    out = ""
    for p in parts:
        if isinstance(p, int):
            out += f"[{p}]"
        elif not out:
            out = str(p)
        elif _IDENT.match(str(p)):
            out += f".{p}"
        else:
            out += f"[{json.dumps(p, ensure_ascii=False)}]"
    return out


def _short(text: str) -> str:
    return text if len(text) <= _MAX_MESSAGE else text[: _MAX_MESSAGE - 3] + "..."


def _names(names, *, order: bool = True) -> str:
    """Names as code, comma-separated: "`a`, `b`" (sorted unless ``order`` is False)."""
    return ", ".join(f"`{n}`" for n in (sorted(names) if order else names))
