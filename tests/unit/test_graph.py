"""Workflow definition validation and graph queries: plain functions, no database."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from engine.core.graph import DEFINITION_SCHEMA, EdgeSpec, Graph, definition_checksum, validate
from engine.core.registry import NodeType
from engine.exceptions import GraphInvalid

REPO = Path(__file__).resolve().parents[2]


class _Fake:
    pass


NODE_TYPES = {
    "noop": NodeType(name="noop", cls=_Fake, label="No-op", description="",
                     config_schema={"type": "object", "properties": {}, "additionalProperties": False},
                     default_queue="fast"),
    "http": NodeType(name="http", cls=_Fake, label="HTTP", description="",
                     config_schema={"type": "object", "required": ["url"], "properties": {"url": {"type": "string"}}}),
    "agent": NodeType(name="agent", cls=_Fake, label="Agent", description="",
                      config_schema={"type": "object"}, default_queue="llm"),
}
QUEUES = {"default", "fast", "slow"}


def node(node_id: str, type_: str = "noop", **fields) -> dict:
    return {"id": node_id, "type": type_, **fields}


def edge(source: str, target: str, **fields) -> dict:
    return {"source": source, "target": target, **fields}


def definition(nodes: list[dict], edges: list[dict] | None = None, **fields) -> dict:
    return {"name": "Test", "slug": "test", "nodes": nodes, "edges": edges or [], **fields}


def check(defn: dict, **kwargs) -> Graph:
    return validate(defn, node_types=NODE_TYPES, queues=QUEUES, **kwargs)


def errors_of(defn: dict, **kwargs) -> list:
    with pytest.raises(GraphInvalid) as caught:
        check(defn, **kwargs)
    return caught.value.errors


def codes(issues) -> list[str]:
    return [i.code for i in issues]


def diamond() -> dict:
    #   a -> b -> d
    #   a -> c -> d
    return definition(
        [node("a"), node("b", "http", config={"url": "http://x"}), node("c"), node("d")],
        [edge("a", "b"), edge("a", "c"), edge("b", "d"), edge("c", "d")],
    )


# --- a valid definition becomes a Graph --------------------------------------------------------


def test_valid_definition_builds_graph_with_resolved_specs():
    defn = definition(
        [
            node("a", "http", config={"url": "http://x"}, name="Fetch", retry={"max_attempts": 5}, timeout_s=30,
                 position={"x": 10, "y": 20}),
            node("b", queue="slow", trigger_rule="one_success"),
        ],
        [edge("a", "b", condition="output.ok", branch="yes")],
    )
    graph = check(defn)

    assert graph.definition is defn
    assert list(graph.nodes) == ["a", "b"]
    a, b = graph.nodes["a"], graph.nodes["b"]
    assert (a.type, a.name, a.queue, a.retry, a.timeout_s, a.trigger_rule, a.index) == (
        "http", "Fetch", "default", {"max_attempts": 5}, 30, "all_success", 0)
    assert a.config == {"url": "http://x"} and a.position == {"x": 10, "y": 20}
    assert (b.name, b.queue, b.config, b.retry, b.timeout_s, b.trigger_rule, b.position, b.index) == (
        "b", "slow", {}, {}, None, "one_success", None, 1)
    assert graph.edges == [EdgeSpec("a", "b", "output.ok", "yes", 0)]
    assert graph.out_edges("a") == graph.in_edges("b") == graph.edges
    assert graph.in_edges("a") == [] and graph.out_edges("b") == []
    assert sorted(graph.dg.edges) == [("a", "b")]
    assert graph.warnings == []


def test_node_queue_defaults_to_its_type_default_queue():
    graph = check(definition([node("a"), node("b", "http", config={"url": "u"}), node("c", queue=None)],
                             [edge("a", "b"), edge("b", "c")]))
    assert {n: s.queue for n, s in graph.nodes.items()} == {"a": "fast", "b": "default", "c": "fast"}


def test_roots_sinks_and_topological_order():
    graph = check(diamond())
    assert graph.roots() == ["a"]
    assert graph.sinks() == ["d"]
    assert graph.topological_order() == ["a", "b", "c", "d"]


def test_descendants_and_critical_path():
    graph = check(diamond())
    assert graph.descendants("a") == {"b", "c", "d"}
    assert graph.descendants("b") == {"d"}
    assert graph.descendants("d") == set()
    assert graph.ancestors("d") == {"a", "b", "c"}
    assert graph.ancestors("a") == set()

    assert graph.critical_path({"a": 1, "b": 5, "c": 2, "d": 1}) == ["a", "b", "d"]
    assert graph.critical_path({"a": 1, "b": 2, "c": 7}) == ["a", "c", "d"]  # d missing -> 0
    # No durations at all: still a whole path, not a single node.
    assert graph.critical_path({}) == ["a", "b", "d"]


def test_critical_path_can_be_an_isolated_long_node():
    graph = check(definition([node("a"), node("b"), node("solo")], [edge("a", "b")]))
    assert graph.critical_path({"a": 1, "b": 1, "solo": 10}) == ["solo"]


@settings(max_examples=200, deadline=None, derandomize=True)
@given(st.data())
def test_critical_path_is_as_long_as_networkx_dag_longest_path(data):
    """The one-pass critical path weighs what networkx's dag_longest_path finds on the same DAG, with
    each node's duration on its out-edges and on an edge to an extra sink."""
    import networkx as nx

    n = data.draw(st.integers(1, 12), label="nodes")
    ids = [f"n{i}" for i in range(n)]
    pairs = [(a, b) for i, a in enumerate(ids) for b in ids[i + 1:]]  # forward edges only: acyclic
    chosen = data.draw(st.lists(st.sampled_from(pairs), unique=True, max_size=len(pairs)) if pairs else st.just([]),
                       label="edges")
    durations = {i: data.draw(st.integers(0, 50), label=f"duration {i}") for i in ids}
    graph = check(definition([node(i) for i in ids], [edge(a, b) for a, b in chosen]))

    path = graph.critical_path(durations)

    assert all((a, b) in chosen for a, b in zip(path, path[1:], strict=False)), path
    dg = nx.DiGraph()
    dg.add_nodes_from(ids)
    dg.add_weighted_edges_from((a, b, durations[a]) for a, b in chosen)
    dg.add_weighted_edges_from((i, "<sink>", durations[i]) for i in ids)
    assert sum(durations[i] for i in path) == nx.dag_longest_path_length(dg, weight="weight")


def test_layout_layers_by_generation_and_keeps_saved_positions():
    defn = diamond()
    defn["nodes"][3]["position"] = {"x": 999, "y": -5}
    layout = check(defn).layout()
    assert layout == {
        "a": {"x": 0, "y": 0},
        "b": {"x": 220, "y": 0},
        "c": {"x": 220, "y": 120},
        "d": {"x": 999, "y": -5},
    }


def test_the_example_in_the_format_document_is_valid():
    from engine.core.registry import node_types

    text = (REPO / "docs/workflow-format.md").read_text()
    example = json.loads(text.split("\n## Example\n", 1)[1].split("```json\n", 1)[1].split("```", 1)[0])
    Draft202012Validator(DEFINITION_SCHEMA).validate(example)
    graph = validate(example, node_types=node_types(), queues=QUEUES)
    assert list(graph.nodes) == ["fetch", "summarise", "publish", "done"] and graph.warnings == []


def test_definition_schema_is_a_valid_draft_2020_12_schema():
    Draft202012Validator.check_schema(DEFINITION_SCHEMA)
    assert DEFINITION_SCHEMA["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    Draft202012Validator(DEFINITION_SCHEMA).validate(diamond())


def test_graph_module_imports_without_django():
    code = ("import sys, engine.core.graph; "
            "bad = [m for m in sys.modules if m == 'django' or m.startswith('django.')]; "
            "assert not bad, bad; print('ok')")
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True,
                            env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO)}, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


# --- errors --------------------------------------------------------------------------------------


def test_cycle_error_lists_every_node_in_the_cycle():
    defn = definition([node("start"), node("a"), node("b"), node("c"), node("end")],
                      [edge("start", "a"), edge("a", "b"), edge("b", "c"), edge("c", "a"), edge("c", "end")])
    errors = errors_of(defn)
    assert codes(errors) == ["cycle"]
    assert "a -> b -> c -> a" in errors[0].message
    assert "start" not in errors[0].message and "end" not in errors[0].message


def test_cycle_error_names_nodes_of_the_loop_off_the_reported_cycle():
    # up <-> down, and down -> side -> up: one loop of three nodes, though the cycle drawn is up -> down -> up.
    defn = definition([node("up"), node("down"), node("side")],
                      [edge("up", "down"), edge("down", "up"), edge("down", "side"), edge("side", "up")])
    errors = errors_of(defn)
    assert codes(errors) == ["cycle"]
    assert "up -> down -> up" in errors[0].message
    assert "side" in errors[0].message


def test_each_separate_cycle_is_reported():
    defn = definition([node(n) for n in "abcdef"],
                      [edge("a", "b"), edge("b", "a"), edge("c", "d"), edge("d", "e"), edge("e", "c"), edge("e", "f")])
    errors = errors_of(defn)
    assert codes(errors) == ["cycle", "cycle"]
    assert "a -> b -> a" in errors[0].message
    assert "c -> d -> e -> c" in errors[1].message


def test_self_loop_is_its_own_error():
    errors = errors_of(definition([node("a"), node("b")], [edge("a", "b"), edge("b", "b")]))
    assert codes(errors) == ["self_loop"]
    assert errors[0].node == "b" and errors[0].edge == "b->b"
    assert errors[0].message == "edge b->b connects node `b` to itself"


def test_every_error_is_reported_at_once():
    defn = definition(
        [
            node("a"),
            node("a"),  # duplicate_node
            node("b", "mystery"),  # unknown_node_type
            node("c", "http"),  # config_invalid: url missing
            node("d", queue="gpu"),  # unknown_queue
            node("e"),
            node("f"),
        ],
        [
            edge("a", "ghost"),  # unknown_edge_node (target)
            edge("a", "e"),
            edge("a", "e"),  # duplicate_edge
            edge("e", "f"),
            edge("f", "e"),  # cycle e <-> f
            edge("d", "c", condition="{{ broken"),  # condition_invalid
        ],
    )
    errors = errors_of(defn, check_expression=lambda expr: "unbalanced braces" if "{{" in expr else None)
    assert sorted(codes(errors)) == sorted([
        "duplicate_node", "unknown_node_type", "config_invalid", "unknown_queue", "unknown_edge_node",
        "duplicate_edge", "condition_invalid", "cycle",
    ])
    by_code = {i.code: i for i in errors}
    assert by_code["duplicate_node"].node == "a" and by_code["duplicate_node"].message == (
        "node `a`: two nodes have this id (nodes number 1 and 2); give each its own")
    assert by_code["unknown_node_type"].node == "b" and by_code["unknown_node_type"].message.startswith(
        "node `b`: `mystery` is not a known node type (known types: `agent`, `http`, `noop`")
    assert by_code["unknown_edge_node"].edge == "a->ghost"
    assert by_code["unknown_edge_node"].message == "edge a->ghost: target `ghost` is not a node id"
    assert by_code["duplicate_edge"].message == "edge a->e appears twice (edges number 2 and 3)"
    assert by_code["duplicate_edge"].edge == "a->e" and by_code["duplicate_edge"].path == "edges[2]"
    assert by_code["condition_invalid"].edge == "d->c" and "unbalanced braces" in by_code["condition_invalid"].message
    assert "e -> f -> e" in by_code["cycle"].message


def test_graph_invalid_details_carry_every_issue():
    with pytest.raises(GraphInvalid) as caught:
        check(definition([node("a", queue="nope"), node("b", "zzz")]))
    details = caught.value.details
    assert [d["code"] for d in details] == ["unknown_queue", "unknown_node_type"]
    assert details[0] == {"code": "unknown_queue", "message": details[0]["message"], "node": "a",
                          "path": "nodes[0].queue"}
    assert "2 error(s)" in caught.value.message


def test_unknown_queue_names_the_node():
    errors = errors_of(definition([node("fetch", "http", config={"url": "u"}, queue="gpu")]))
    assert codes(errors) == ["unknown_queue"]
    assert errors[0].node == "fetch" and errors[0].path == "nodes[0].queue"
    assert errors[0].message.startswith("node `fetch`: queue `gpu` is not configured (queues: `default`")


def test_unknown_default_queue_of_node_type_is_reported():
    errors = errors_of(definition([node("think", "agent")]))
    assert codes(errors) == ["unknown_queue"]
    assert errors[0].message.startswith("node `think`: queue `llm` (the default of node type `agent`) is not "
                                        "configured")


def test_config_error_names_node_and_path():
    defn = definition([node("ok", "http", config={"url": "u"}), node("bad", "http", config={"url": 42})],
                      [edge("ok", "bad")])
    errors = errors_of(defn)
    assert codes(errors) == ["config_invalid"]
    assert errors[0].node == "bad"
    assert errors[0].path == "nodes[1].config.url"
    assert errors[0].message == "node `bad`: `url` must be a string"


def test_each_config_error_is_a_separate_issue():
    defn = definition([node("a", config={"x": 1, "y": 2}), node("b", "http", config={})], [edge("a", "b")])
    errors = errors_of(defn)
    assert codes(errors) == ["config_invalid", "config_invalid"]
    assert [e.node for e in errors] == ["a", "b"]
    assert errors[1].message == "node `b`: `url` is required"
    assert errors[1].path == "nodes[1].config"


def test_unknown_edge_node_reports_source_and_target_separately():
    errors = errors_of(definition([node("a")], [edge("x", "y")]))
    assert codes(errors) == ["unknown_edge_node", "unknown_edge_node"]
    assert [e.path for e in errors] == ["edges[0].source", "edges[0].target"]
    assert all(e.edge == "x->y" for e in errors)


def test_edge_to_a_node_with_its_own_error_is_not_reported_twice():
    errors = errors_of(definition([node("a"), node("b", "mystery")], [edge("a", "b")]))
    assert codes(errors) == ["unknown_node_type"]


def test_empty_definition_is_an_error():
    errors = errors_of(definition([]))
    assert codes(errors) == ["empty"]


def test_too_many_nodes_is_reported_once():
    nodes = [node(f"n{i}", "http") for i in range(6)]  # configs invalid too, but not checked past the limit
    errors = errors_of(definition(nodes), max_nodes=5)
    assert codes(errors) == ["too_many_nodes"]
    assert "6" in errors[0].message and "5" in errors[0].message


def test_condition_is_only_checked_when_a_checker_is_given():
    defn = definition([node("a"), node("b")], [edge("a", "b", condition="output.ok")])
    seen = []
    check(defn, check_expression=lambda expr: seen.append(expr))
    assert seen == ["output.ok"]
    assert check(defn).edges[0].condition == "output.ok"


def test_schema_errors_carry_paths():
    defn = definition(
        [
            node("a", retry={"max_attempts": 0, "jitter": 2}),
            node("b", trigger_rule="sometimes", colour="red"),
            {"type": "noop"},
        ],
        [edge("a", "b", weight=3)],
        slug="Not A Slug",
    )
    errors = errors_of(defn)
    schema = {e.path: e for e in errors if e.code == "schema"}
    assert {"slug", "nodes[0].retry.max_attempts", "nodes[0].retry.jitter", "nodes[1].trigger_rule", "nodes[1]",
            "nodes[2]", "edges[0]"} <= set(schema)
    assert schema["nodes[0].retry.max_attempts"].node == "a"
    assert schema["nodes[0].retry.max_attempts"].message == "node `a`: `retry.max_attempts` must be at least 1"
    assert schema["nodes[1]"].node == "b" and "colour" in schema["nodes[1]"].message
    assert schema["nodes[2]"].node is None and schema["nodes[2]"].message == "nodes[2]: `id` is required"
    assert schema["edges[0]"].edge == "a->b"
    assert schema["edges[0]"].message == "edge a->b: `weight` is not a known field"


def test_broken_top_level_stops_after_schema_errors():
    errors = errors_of({"name": "x", "slug": "x", "nodes": {"a": {}}, "edges": "a->b"})
    assert codes(errors) == ["schema", "schema"]
    assert {e.path for e in errors} == {"nodes", "edges"}
    with pytest.raises(GraphInvalid) as caught:
        check(["not", "a", "dict"])
    assert codes(caught.value.errors) == ["schema"]


def test_invalid_inputs_schema_is_reported():
    errors = errors_of(definition([node("a")], inputs={"type": "object", "properties": {"n": {"type": "nope"}}}))
    assert codes(errors) == ["schema"]
    assert errors[0].path.startswith("inputs.properties.n")


# --- warnings --------------------------------------------------------------------------------------


def test_disconnected_nodes_are_warnings_not_errors():
    defn = definition([node("a"), node("b"), node("x"), node("y"), node("lonely")],
                      [edge("a", "b"), edge("x", "y")])
    graph = check(defn)
    assert codes(graph.warnings) == ["disconnected", "disconnected"]
    assert [w.node for w in graph.warnings] == ["x", "lonely"]
    assert graph.warnings[0].message == ("node(s) `x`, `y` are not connected to the main part of the workflow (the "
                                         "part that starts at `a`)")
    assert "lonely" in graph.warnings[1].message


def test_connected_graph_has_no_warnings():
    assert check(diamond()).warnings == []


# --- checksum and speed ----------------------------------------------------------------------------


def test_definition_checksum_is_key_order_independent():
    a = {"name": "Ünïcode", "slug": "s", "nodes": [{"id": "a", "type": "noop", "config": {"x": 1, "y": [1, 2]}}]}
    b = json.loads(json.dumps({"nodes": [{"config": {"y": [1, 2], "x": 1}, "type": "noop", "id": "a"}],
                               "slug": "s", "name": "Ünïcode"}))
    assert definition_checksum(a) == definition_checksum(b)
    assert len(definition_checksum(a)) == 64
    b["nodes"][0]["config"]["y"] = [2, 1]
    assert definition_checksum(a) != definition_checksum(b)


def _chain(n: int) -> dict:
    return definition(
        [node(f"n{i}", "http", config={"url": f"http://x/{i}"}, retry={"max_attempts": 2}) for i in range(n)],
        [edge(f"n{i}", f"n{i + 1}") for i in range(n - 1)],
    )


def _fan_out(n: int) -> dict:
    return definition(
        [node(f"n{i}", "http", config={"url": "http://x"}) for i in range(n)],
        [edge("n0", f"n{i}") for i in range(1, n)],
    )


def _timed(defn: dict) -> float:
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        graph = check(defn)
        best = min(best, time.perf_counter() - start)
    assert len(graph.nodes) == len(defn["nodes"]) and graph.warnings == []
    return best


@pytest.mark.slow  # about four seconds each
@pytest.mark.parametrize("shape", [_chain, _fan_out], ids=["chain", "fan_out"])
def test_5000_node_definition_validates_linearly(shape):
    timings = {n: _timed(shape(n)) for n in (500, 1000, 5000)}
    print(f"\n{shape.__name__}: " + ", ".join(f"{n} nodes {t * 1000:.0f} ms" for n, t in timings.items()))
    # Linear, not quadratic: ten times the nodes, well under a hundred times the time (each the best of three, under
    # the same load). The absolute figure is bench's (`bench start` validates and saves 5,000 nodes).
    assert timings[5000] / timings[500] < 30


# -- run concurrency ---------------------------------------------------------------------------


def _check_template(text: str) -> str | None:
    return "template syntax error: unexpected '}'" if "{{ }" in text else None


def test_concurrency_is_read_with_its_defaults():
    graph = check(definition([node("a")], concurrency={"key": "{{ inputs.user }}", "limit": 2}))
    assert (graph.concurrency.key, graph.concurrency.limit, graph.concurrency.strategy) == ("{{ inputs.user }}", 2,
                                                                                            "queue")
    assert graph.concurrency.queues
    keyless = check(definition([node("a")], concurrency={"limit": 1, "strategy": "cancel_newest"})).concurrency
    assert keyless.key == "" and not keyless.queues
    assert check(definition([node("a")])).concurrency is None


@pytest.mark.parametrize(("concurrency", "path"), [
    ({"limit": 0}, "concurrency.limit"),
    ({"limit": 1.5}, "concurrency.limit"),
    ({"limit": True}, "concurrency.limit"),
    ({"limit": 1, "strategy": "round_robin"}, "concurrency.strategy"),
    ({"limit": 1, "key": 7}, "concurrency.key"),
    ({"limit": 1, "max": 2}, "concurrency"),
    ({"key": "{{ inputs.user }}"}, "concurrency"),
])
def test_a_bad_concurrency_is_refused_naming_the_field(concurrency, path):
    issues = errors_of(definition([node("a")], concurrency=concurrency))
    assert [(i.code, i.path) for i in issues] == [("schema", path)], issues


def test_a_concurrency_key_that_does_not_parse_is_refused_naming_the_field():
    issues = errors_of(definition([node("a")], concurrency={"key": "{{ }", "limit": 1}),
                       check_template=_check_template)
    assert [(i.code, i.path) for i in issues] == [("concurrency_key_invalid", "concurrency.key")]
    assert "concurrency.key" in issues[0].message
