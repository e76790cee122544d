"""Checks of node configs beyond their JSON Schemas, run when a definition is saved.

- every template string parses (Jinja2 syntax);
- a template refers only to nodes upstream of its node (``nodes.<id>`` must be an ancestor);
- each node type's optional ``validate_config(config, *, node_id, upstream_ids, graph)`` hook, which
  returns problems as messages or ``(config path, message)`` pairs: unknown credentials, hosts the
  SSRF guard refuses, unknown functions, branch names, ...

Problems are ``Issue``s naming the node and the config path, raised together as ``GraphInvalid``.
These checks read the database (credentials), so they run when a definition is saved, never when
a stored version is loaded to run.
"""

from __future__ import annotations

from collections.abc import Set as AbstractSet
from typing import Any

import networkx as nx

from engine.core import registry
from engine.exceptions import Issue
from engine.integrations import netguard
from engine.templating import templates as templating


def config_issues(graph) -> list[Issue]:
    issues: list[Issue] = []
    for node in graph.nodes.values():
        base = f"nodes[{node.index}].config"
        upstream = _Ancestors(graph, node.id)
        for path, text in _template_strings(node.config, base):
            problem = templating.check_syntax(text)
            if problem:
                issues.append(Issue("template_invalid", f"node {node.id!r}: {path}: {problem}", node=node.id,
                                    path=path))
                continue
            for ref in sorted(r for r in templating.referenced_nodes(text) if r not in upstream):
                if ref == node.id:
                    why = "which is the node itself"
                elif ref not in graph.nodes:
                    why = "which does not exist"
                else:
                    why = f"which is not upstream of {node.id!r} (no path of edges leads from it to this node)"
                issues.append(Issue("template_reference", f"node {node.id!r}: {path} refers to node {ref!r}, {why}",
                                    node=node.id, path=path))
        ntype = registry.node_types().get(node.type)
        hook = getattr(ntype.cls, "validate_config", None) if ntype else None
        if hook is None:
            continue
        for problem in hook(ntype.cls(), node.config, node_id=node.id, upstream_ids=upstream, graph=graph):
            sub, message = problem if isinstance(problem, tuple) else ("", problem)
            path = f"{base}.{sub}" if sub else base
            issues.append(Issue("config_invalid", f"node {node.id!r}: {path}: {message}", node=node.id, path=path))
    return issues


class _Ancestors(AbstractSet):
    """A node's ancestors, computed only if asked for (most nodes never are): keeps validation linear."""

    def __init__(self, graph, node_id: str):
        self._graph, self._node_id, self._set = graph, node_id, None

    def _all(self) -> set[str]:
        if self._set is None:
            self._set = self._graph.ancestors(self._node_id)
        return self._set

    def __contains__(self, other) -> bool:
        if self._set is None and other in self._graph.nodes:
            return other != self._node_id and nx.has_path(self._graph.dg, other, self._node_id)
        return other in self._all()

    def __iter__(self):
        return iter(self._all())

    def __len__(self) -> int:
        return len(self._all())


def _template_strings(value: Any, path: str):
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _template_strings(v, f"{path}.{k}")
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _template_strings(v, f"{path}[{i}]")
    elif templating.is_template(value):
        yield path, value


# -- helpers for node types' hooks ----------------------------------------------------------------


def credential_problems(name: Any, path: str = "credential") -> list[tuple[str, str]]:
    """An unknown or templated credential name."""
    if name in (None, ""):
        return []
    if not isinstance(name, str):
        return [(path, "a credential is referenced by its name (a string)")]
    if templating.is_template(name):
        return [(path, "credential names cannot be templates; name a stored credential")]
    from engine.integrations.credentials import credential_exists

    if not credential_exists(name):
        return [(path, f"credential {name!r} does not exist (create it first; secrets never go in definitions)")]
    return []


def url_problems(url: Any, path: str = "url") -> list[tuple[str, str]]:
    """A literal URL that the SSRF guard would refuse (templated URLs are checked when the request is sent)."""
    if not isinstance(url, str) or not url or "{{" in url or "{%" in url:
        return []
    problem = netguard.check_url_static(url)
    return [(path, problem)] if problem else []
