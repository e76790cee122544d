"""What changed between two workflow definitions, field by field: the one comparison the retry dialog's version
choice (engine.services.run_versions) and the editor's version compare (engine.services.workflows) show.

Plain functions over definition dicts (no Django). A field is a dotted path into nested objects
(``config.headers.Authorization``); a list is one value, compared whole. A missing field is None.
"""

from __future__ import annotations

# A node's place on the canvas is not behaviour; its id is how nodes are matched.
_NODE_IGNORED = frozenset({"id", "position"})
# The parts of a definition compared on their own: nodes by id, edges by source and target.
_GRAPH_FIELDS = frozenset({"nodes", "edges"})


def _flatten(value, prefix: str, out: dict) -> dict:
    if isinstance(value, dict):  # an empty object has no fields to compare
        for key in sorted(value):
            _flatten(value[key], f"{prefix}.{key}" if prefix else str(key), out)
    else:
        out[prefix] = value
    return out


def field_changes(before: dict | None, after: dict | None, *, ignore: frozenset = frozenset()) -> list[dict]:
    """``[{"field": "config.url", "before", "after"}]`` for every field path whose value differs, sorted by path;
    top-level keys in ``ignore`` are not compared."""
    old = _flatten({k: v for k, v in (before or {}).items() if k not in ignore}, "", {})
    new = _flatten({k: v for k, v in (after or {}).items() if k not in ignore}, "", {})
    return [{"field": f, "before": old.get(f), "after": new.get(f)}
            for f in sorted(old.keys() | new.keys()) if old.get(f) != new.get(f)]


def node_changes(before: dict | None, after: dict | None) -> list[dict]:
    """Field-by-field changes of one node's definition (its position is not compared)."""
    return field_changes(before, after, ignore=_NODE_IGNORED)


def _keyed(items, key) -> dict:
    """The items of a list (anything else: none) by their key; an item without a string key is left out."""
    items = items if isinstance(items, list) else []
    return {k: item for item in items if isinstance(item, dict) and isinstance(k := key(item), str)}


def _changes(old: dict, new: dict, name: str, compare) -> list[dict]:
    out = []
    for key in [*old, *(k for k in new if k not in old)]:
        if key not in new:
            out.append({name: key, "change": "removed", "fields": compare(old[key], None)})
        elif key not in old:
            out.append({name: key, "change": "added", "fields": compare(None, new[key])})
        elif fields := compare(old[key], new[key]):
            out.append({name: key, "change": "changed", "fields": fields})
    return out


def definition_changes(before: dict, after: dict) -> list[dict]:
    """Per node id of either definition, its field changes: ``[{"node_id", "change": added|removed|changed,
    "fields": [...]}]`` in the order the nodes appear (before's first, then those only after has)."""
    return _changes(_keyed(before.get("nodes"), lambda n: n.get("id")),
                    _keyed(after.get("nodes"), lambda n: n.get("id")), "node_id", node_changes)


def edge_changes(before: dict, after: dict) -> list[dict]:
    """Per edge ``source->target`` of either definition: ``[{"edge", "change", "fields"}]`` (fields: its
    condition and branch)."""
    def key(e):
        return f"{e.get('source')}->{e.get('target')}"

    return _changes(_keyed(before.get("edges"), key), _keyed(after.get("edges"), key), "edge",
                    lambda a, b: field_changes(a, b, ignore=frozenset({"source", "target"})))


def definition_diff(before: dict, after: dict) -> dict:
    """Everything that changed from ``before`` to ``after``: ``nodes`` and ``edges`` (as above) and ``workflow``,
    the changed fields of the rest of the definition (name, inputs schema, concurrency, priority, ...)."""
    return {
        "workflow": field_changes(before, after, ignore=_GRAPH_FIELDS),
        "nodes": definition_changes(before, after),
        "edges": edge_changes(before, after),
    }
