"""Moving a run to its workflow's current version, for a retry or rerun after a fix.

A run pins the version it started on. An operator who saved a fix as a new version can retry a failed
step on it: the run moves to that version (its remaining steps then run the new definition) when the
two graphs have the same nodes and edges, so every step row, readiness counter and finished output
still means what it did. Otherwise the move is refused, naming what differs.
"""

from __future__ import annotations

from engine.core.definition_diff import definition_changes
from engine.core.graph import Graph
from engine.core.runtx import RunTx
from engine.core.versions import version_graph
from engine.exceptions import InvalidTransition, NotFound
from engine.models import Run, StepRun, WorkflowVersion

VERSION_CHOICES = ("run", "current")


def move_problems(current: Graph, target: Graph, target_number: int) -> list[str]:
    """Why a run on ``current`` cannot move to ``target`` (empty: it can)."""
    problems = []
    missing = sorted(set(current.nodes) - set(target.nodes))
    added = sorted(set(target.nodes) - set(current.nodes))
    if missing:
        problems.append(f"v{target_number} has no node {', '.join(f'`{n}`' for n in missing[:10])}")
    if added:
        problems.append(f"v{target_number} adds node {', '.join(f'`{n}`' for n in added[:10])}")

    def edges(g: Graph) -> set:
        return {(e.source, e.target, e.condition, e.branch) for n in g.nodes for e in g.in_edges(n)}

    changed = sorted({e[1] for e in edges(current) ^ edges(target)} & set(current.nodes) & set(target.nodes))
    if changed:
        problems.append(f"v{target_number} changes the edges into {', '.join(f'`{n}`' for n in changed[:10])}")
    return problems


def _current_version(run: Run) -> WorkflowVersion:
    version = run.workflow.current_version
    if version is None:
        raise NotFound(f"workflow {run.workflow.slug} has no current version")
    return version


def run_version_compare(*, run_id) -> dict:
    """The run's version and its workflow's current one: whether the run can move there (and why not), and
    every node's field changes between them."""
    run = Run.objects.select_related("version", "workflow__current_version").filter(pk=run_id).first()
    if run is None:
        raise NotFound(f"run {run_id} does not exist")
    current = _current_version(run)
    same = current.pk == run.version_id
    problems = [] if same else move_problems(version_graph(run.version_id), version_graph(current.pk), current.number)
    return {
        "run_version": run.version.number,
        "current_version": current.number,
        "movable": not problems,
        "problems": problems,
        "changes": [] if same else definition_changes(run.version.definition, current.definition),
    }


def run_version_move(tx: RunTx, *, version: str, action: str) -> None:
    """Inside an operator action's transaction: with ``version="current"``, move the run to its workflow's
    current version (an event ``run.version_changed`` says from which to which), or refuse with the reason."""
    if version not in VERSION_CHOICES:
        raise InvalidTransition(f"version must be one of {', '.join(VERSION_CHOICES)}, not {version!r}")
    if version == "run":
        return
    run = Run.objects.select_related("workflow__current_version", "version").get(pk=tx.run.pk)
    target = _current_version(run)
    if target.pk == run.version_id:
        return
    graph = version_graph(target.pk)
    problems = move_problems(tx.graph, graph, target.number)
    if problems:
        raise InvalidTransition(
            f"cannot {action} on the current version (v{target.number}): {'; '.join(problems)}. The run's steps "
            f"move to another version only when it has the same nodes and edges; retry on the run's version "
            f"(v{run.version.number}) or start a new run", details=[{"problem": p} for p in problems])
    Run.objects.filter(pk=run.pk).update(version_id=target.pk)
    for node_id, spec in graph.nodes.items():
        StepRun.objects.filter(run_id=run.pk, node_id=node_id).exclude(node_type=spec.type, queue=spec.queue).update(
            node_type=spec.type, queue=spec.queue)
    tx.run.version_id = target.pk
    tx.graph = graph
    tx.event("run.version_changed", from_version=run.version.number, to_version=target.number)
