"""The one comparison of two definitions, field by field (engine.core.definition_diff): plain functions."""

from __future__ import annotations

from engine.core.definition_diff import definition_diff, edge_changes, field_changes, node_changes


def test_nested_config_fields_are_dotted_paths_and_lists_compare_whole():
    before = {"config": {"url": "x", "headers": {"Authorization": "a", "Accept": "json"}, "tags": [1, 2]}}
    after = {"config": {"url": "x", "headers": {"Authorization": "b", "Accept": "json"}, "tags": [1, 3]}}
    assert field_changes(before, after) == [
        {"field": "config.headers.Authorization", "before": "a", "after": "b"},
        {"field": "config.tags", "before": [1, 2], "after": [1, 3]},
    ]


def test_a_nodes_position_is_not_a_change_but_its_queue_retry_and_map_are():
    before = {"id": "a", "type": "http", "position": {"x": 1}, "retry": {"max_attempts": 3}}
    after = {"id": "a", "type": "http", "position": {"x": 9}, "retry": {"max_attempts": 5}, "queue": "slow",
             "for_each": "{{ inputs.items }}"}
    assert node_changes(before, after) == [
        {"field": "for_each", "before": None, "after": "{{ inputs.items }}"},
        {"field": "queue", "before": None, "after": "slow"},
        {"field": "retry.max_attempts", "before": 3, "after": 5},
    ]
    assert node_changes(before, {**before, "position": {"x": 500}}) == []


def test_edges_added_removed_and_changed_by_their_condition_or_branch():
    before = {"edges": [{"source": "a", "target": "b"}, {"source": "a", "target": "c", "branch": "yes"}]}
    after = {"edges": [{"source": "a", "target": "c", "branch": "no"}, {"source": "b", "target": "c"}]}
    assert edge_changes(before, after) == [
        {"edge": "a->b", "change": "removed", "fields": []},
        {"edge": "a->c", "change": "changed", "fields": [{"field": "branch", "before": "yes", "after": "no"}]},
        {"edge": "b->c", "change": "added", "fields": []},
    ]


def test_the_rest_of_the_definition_is_compared_outside_nodes_and_edges():
    before = {"name": "W", "nodes": [{"id": "a"}], "edges": [], "inputs": {"properties": {"x": {"default": 1}}},
              "priority": 0}
    after = {"name": "W", "nodes": [{"id": "a"}], "edges": [], "inputs": {"properties": {"x": {"default": 2}}},
             "priority": 5, "concurrency": {"limit": 2}}
    assert definition_diff(before, after) == {
        "workflow": [{"field": "concurrency.limit", "before": None, "after": 2},
                     {"field": "inputs.properties.x.default", "before": 1, "after": 2},
                     {"field": "priority", "before": 0, "after": 5}],
        "nodes": [],
        "edges": [],
    }


def test_a_malformed_definition_compares_what_it_can_without_failing():
    before = {"nodes": 7, "edges": "x"}
    after = {"nodes": [{"id": {"not": "a string"}}, "junk", {"id": "a"}], "edges": [{"source": "a", "target": "b"}]}
    assert definition_diff(before, after) == {
        "workflow": [],
        "nodes": [{"node_id": "a", "change": "added", "fields": []}],
        "edges": [{"edge": "a->b", "change": "added", "fields": []}],
    }
