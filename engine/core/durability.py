"""A run's durability: whether its workers' transactions wait for the WAL to reach the disk (docs/reliability.md).

``strict`` (the default) commits every transaction with the server's ``synchronous_commit`` (on). ``relaxed``
commits the transactions a worker writes for a run's steps (claims, outcomes, journal entries) with
``synchronous_commit = off``, that transaction only: the commit returns once its WAL is in PostgreSQL's buffers,
and the WAL writer puts it on disk within three ``wal_writer_delay``s. A worker killed loses nothing; a PostgreSQL
crash can lose those last commits, and their steps run again with the same idempotency keys.

The run's durability is decided when it starts (``run_durability``) and kept on the run row, so it never changes
mid-way; the statements read it there. What Weft could not do again is never relaxed: a run's start, an operator's
action, an outside event, and the journal entries of calls that are not safe to repeat.
"""

from __future__ import annotations

from collections.abc import Mapping

from engine.statements import load
from engine.states import Durability

_SQL = load(__file__, "sql/durability.sql")
# A guard's condition that turns synchronous_commit off for the statement's transaction (always true).
COMMIT_RELAXED = _SQL["commit_relaxed"]
# The same, only when the run row the statement reads is a relaxed run's (parameter %(relaxed)s: RELAXED_PARAMS).
COMMIT_RELAXED_IF_RUN = _SQL["commit_relaxed_if_run"]
RELAXED_PARAMS = {"relaxed": Durability.RELAXED.value}


def run_durability(graph, queues: Mapping[str, dict]) -> str:
    """The durability of a new run of ``graph``: the definition's, else relaxed only if every queue its nodes use
    defaults to relaxed (``queues``: WEFT_QUEUES), else strict."""
    if graph.durability is not None:
        return graph.durability
    used = {node.queue for node in graph.nodes.values()}
    if used and all(queues.get(q, {}).get("durability") == Durability.RELAXED for q in used):
        return Durability.RELAXED.value
    return Durability.STRICT.value
