"""Checks of node configs beyond their JSON Schemas, run when a definition is saved.

- every template string parses (Jinja2 syntax);
- a template refers only to nodes upstream of its node (``nodes.<id>`` must be an ancestor);
- each node type's optional ``validate_config(config, *, node_id, upstream_ids, graph)`` hook, which
  returns problems as messages or ``(config path, message)`` pairs: hosts the SSRF guard refuses,
  unknown functions, branch names, ...
- the credentials a node type says its config sends (its optional ``credential_uses(config)``, a list
  of ``CredentialUse``), checked here for every node type alike: the credential exists, the one saving
  may use credentials (permission ``engine.use_credential``; no actor: a trusted caller such as a
  management command), it has ``allowed_hosts``, and a literal URL it goes to is on them.

Problems are ``Issue``s naming the node and the config path, raised together as ``GraphInvalid``.
These checks read the database (credentials), so they run when a definition is saved, never when
a stored version is loaded to run.
"""

from __future__ import annotations

from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from typing import Any

import httpx
import networkx as nx

from engine.core import registry
from engine.exceptions import Issue
from engine.integrations import netguard
from engine.templating import templates as templating

USE_CREDENTIAL = "engine.use_credential"


@dataclass(frozen=True)
class CredentialUse:
    """A credential named at config path ``path``, and the URL it is sent to: a literal URL is checked
    against the credential's allowed_hosts when the definition is saved; a template (or None) when sent."""

    path: str
    name: Any
    url: Any = None


def config_issues(graph, *, actor=None, skip: AbstractSet[str] = frozenset()) -> list[Issue]:
    """Every problem of the graph's node configs. ``actor`` (a user, or None for a trusted caller) must be
    allowed to use the credentials the nodes name. Nodes in ``skip`` (their config already failed its schema:
    the hooks expect a config that matches it) are not checked."""
    issues: list[Issue] = []
    uses: list[tuple[Any, CredentialUse]] = []
    for node in graph.nodes.values():
        if node.id in skip:
            continue
        base = f"nodes[{node.index}].config"
        upstream = _Ancestors(graph, node.id)
        templates = list(_template_strings(node.config, base))
        if node.for_each is not None:
            templates.append((f"nodes[{node.index}].for_each", node.for_each))
            if not templating.is_template(node.for_each):
                issues.append(Issue("map_invalid", f"node `{node.id}`: `for_each` must be a template that yields a "
                                                   "list, e.g. `{{ nodes.search.output.urls }}`",
                                    node=node.id, path=f"nodes[{node.index}].for_each"))
        for path, text in templates:
            field = _field(path, node)
            problem = templating.check_syntax(text)
            if problem:
                issues.append(Issue("template_invalid", f"node `{node.id}`: {_template_problem(field, problem)}",
                                    node=node.id, path=path))
                continue
            for ref in sorted(r for r in templating.referenced_nodes(text) if r not in upstream):
                if ref == node.id:
                    why = "which is the node itself"
                elif ref not in graph.nodes:
                    why = "which does not exist"
                else:
                    why = "which is not upstream of it (no path of edges leads from it to this node)"
                issues.append(Issue("template_reference", f"node `{node.id}`: `{field}` refers to node `{ref}`, {why}",
                                    node=node.id, path=path))
        ntype = registry.node_types().get(node.type)
        hook = getattr(ntype.cls, "validate_config", None) if ntype else None
        if hook is not None:
            for problem in hook(ntype.cls(), node.config, node_id=node.id, upstream_ids=upstream, graph=graph):
                issues.append(_config_issue(node, problem))
        declared = getattr(ntype.cls, "credential_uses", None) if ntype else None
        if declared is not None:
            uses += [(node, use) for use in declared(node.config) if use.name not in (None, "")]
    if uses:
        hosts = _credential_hosts({use.name for _, use in uses if isinstance(use.name, str)})
        may_use = actor is None or actor.has_perm(USE_CREDENTIAL)
        for node, use in uses:
            issues += [_config_issue(node, problem) for problem in credential_problems(use, hosts, may_use=may_use)]
    return issues


def _config_issue(node, problem) -> Issue:
    base = f"nodes[{node.index}].config"
    sub, message = problem if isinstance(problem, tuple) else ("", problem)
    path = f"{base}.{sub}" if sub else base
    text = f"node `{node.id}`: `{sub}`: {message}" if sub else f"node `{node.id}`: {message}"
    return Issue("config_invalid", text, node=node.id, path=path)


def _field(path: str, node) -> str:
    """A config path as the designer names the field: "nodes[2].config.headers.auth" -> "headers.auth"."""
    for lead in (f"nodes[{node.index}].config.", f"nodes[{node.index}]."):
        if path.startswith(lead):
            return path[len(lead):]
    return path


def _template_problem(field: str, problem: str) -> str:
    syntax = "template syntax error: "
    if problem.startswith(syntax):
        return f"the template in `{field}` does not parse: {problem[len(syntax):]}"
    return f"the template in `{field}`: {problem}"


def _credential_hosts(names: set[str]) -> dict[str, list[str]]:
    from engine.integrations.credentials import credential_hosts

    return credential_hosts(names)


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


def credential_problems(use: CredentialUse, hosts: dict[str, list[str]], *, may_use: bool) -> list[tuple[str, str]]:
    """A templated or unknown credential name, one the saver may not use, one without allowed_hosts, or a literal
    URL whose host is not on them. ``hosts``: the allowed_hosts of each existing credential."""
    name, path = use.name, use.path
    if name in (None, ""):
        return []
    if not isinstance(name, str):
        return [(path, "a credential is referenced by its name (a string)")]
    if templating.is_template(name):
        return [(path, "credential names cannot be templates; name a stored credential")]
    if not may_use:
        return [(path, f"credential `{name}`: naming a credential in a workflow needs the `credential_user` role, "
                       "which you do not have")]
    if name not in hosts:
        return [(path, f"credential `{name}` does not exist (create it on the Credentials page first; secrets never "
                       "go in definitions)")]
    allowed, host = hosts[name], _literal_host(use.url)
    if allowed and host is None:
        return []  # the URL is a template: its host is checked when the request is sent
    problem = netguard.credential_host_refusal(name, allowed, host or "")
    return [(path, problem)] if problem else []


def _literal_host(url: Any) -> str | None:
    """The host of a literal http(s) URL; None for a template, no URL, or one without a host."""
    if not isinstance(url, str) or not url or templating.is_template(url) or "{{" in url or "{%" in url:
        return None
    try:
        return httpx.URL(url).host or None
    except (httpx.InvalidURL, TypeError, ValueError):
        return None


def url_problems(url: Any, path: str = "url") -> list[tuple[str, str]]:
    """A literal URL that the SSRF guard would refuse (templated URLs are checked when the request is sent)."""
    if not isinstance(url, str) or not url or "{{" in url or "{%" in url:
        return []
    problem = netguard.check_url_static(url)
    return [(path, problem)] if problem else []
