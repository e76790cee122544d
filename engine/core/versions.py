"""Workflow versions as graphs: the parsed, checked graph of an immutable version, cached per process."""

from __future__ import annotations

import threading
from collections import OrderedDict

from django.conf import settings

from engine.core import graph as graphlib
from engine.core import registry
from engine.templating import templates as templating

_GRAPHS: OrderedDict[int, graphlib.Graph] = OrderedDict()
_GRAPH_CACHE_SIZE = 64
_LOCK = threading.Lock()  # a worker's heartbeat thread, its node threads and the web server's threads share it


def graph_load(definition: dict) -> graphlib.Graph:
    """The graph of a definition, checked as a graph (nodes, edges, types, queues, conditions). The node-config
    checks that read the database (templates, credentials, hosts) are made when a version is saved
    (``engine.services.workflows.graph_validate``), not each time a stored version is loaded to run."""
    return graphlib.validate(
        definition,
        node_types=registry.node_types(),
        queues=settings.WEFT_QUEUES,
        max_nodes=settings.WEFT_MAX_NODES,
        check_expression=templating.check_condition,
        check_template=templating.check_syntax,
    )


def version_graph(version) -> graphlib.Graph:
    """The parsed graph of an (immutable) workflow version, cached per process.

    Takes a WorkflowVersion or its id; the definition is only read from the database on a cache miss.
    """
    from engine.models import WorkflowVersion

    key = version if isinstance(version, int) else version.pk
    with _LOCK:
        graph = _GRAPHS.get(key)
        if graph is not None:
            _GRAPHS.move_to_end(key)
            return graph
    definition = (WorkflowVersion.objects.values_list("definition", flat=True).get(pk=key)
                  if isinstance(version, int) else version.definition)
    graph = graph_load(definition)  # outside the lock: two threads may parse the same version once each
    graph_cache_put(key, graph)
    return graph


def graph_cache_put(version_id: int, graph: graphlib.Graph) -> None:
    with _LOCK:
        _GRAPHS[version_id] = graph
        _GRAPHS.move_to_end(version_id)
        while len(_GRAPHS) > _GRAPH_CACHE_SIZE:
            _GRAPHS.popitem(last=False)
