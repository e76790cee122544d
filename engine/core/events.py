"""Append-only run events, and their publication to the channel layer after commit.

Events are buffered by a ``RunTx`` (see runtx) and written in the same
transaction that makes them true, with gapless per-run sequence numbers.
"""

from __future__ import annotations

import functools
import json
import logging
import re
from dataclasses import dataclass, field

from django.db import connection, transaction
from django.db.models.functions import Now
from django.utils import timezone

from engine.core.dbretry import prepared_cursor
from engine.models import Event, Run
from engine.statements import Statement, StatementError, compose, execute, load

log = logging.getLogger(__name__)


@dataclass
class PendingEvent:
    type: str
    node_id: str = ""
    payload: dict = field(default_factory=dict)
    actor: str = ""


_SQL = load(__file__, "sql/events.sql")

# A batch of events as the run's next sequence numbers (a piece of every statement that writes events).
EVENTS_INSERT = _SQL["events_insert"]

# channels-postgres's rows for one message to some groups (see _postgres_rows).
MESSAGES_INSERT = _SQL["messages_insert"]
_MESSAGES_SEND = compose(_SQL["messages_send"], messages_insert=MESSAGES_INSERT)
_PURGE = _SQL["messages_purge"]


@functools.cache
def messages_tables_check() -> None:
    """Raise StatementError unless messages_insert names channels-postgres's own tables."""
    from channels_postgres.db import GROUP_CHANNEL_TABLE, MESSAGE_TABLE

    for table in (MESSAGE_TABLE, GROUP_CHANNEL_TABLE):
        if not re.search(rf"\b{re.escape(table)}\b", MESSAGES_INSERT.sql):
            raise StatementError(f"events.sql 'messages_insert' does not write channels-postgres's table {table!r}")


@functools.lru_cache(maxsize=256)
def _events_write(send: bool, changes: tuple[tuple[str, bool], ...]) -> tuple[Statement, tuple]:
    """events_write for the run row's ``changes`` ((field name, set to the statement's time) pairs), and the model
    fields it returns. The assignments are generated from the model's columns, here only: a column is set to
    statement_timestamp() or to the parameter named c_<column>."""
    fields = [Run._meta.get_field(name) for name, _now in changes]
    sets = "".join(f", {field.column} = statement_timestamp()" if now else f", {field.column} = %(c_{field.column})s"
                   for field, (_name, now) in zip(fields, changes, strict=True))
    returned = (Run._meta.get_field("last_seq"), Run._meta.get_field("unfinished_steps"), *fields)
    statement = compose(_SQL["events_write"], events_insert=EVENTS_INSERT, send=_MESSAGES_SEND if send else "",
                        run_sets=sets, returning=f" RETURNING {', '.join(f.column for f in returned)}")
    return statement, returned


class EventBatch:
    """Events about to be written as seq ``first_seq``, ``first_seq + 1``, ...: the parameters of the
    statement that writes them, and their publication once it commits.

    ``send`` holds the channel-layer rows (the parameters of MESSAGES_INSERT) when the layer is
    channels-postgres and the rows go in with the events; None when publishing happens after commit.
    It is worked out only for a statement that takes them (``params``)."""

    def __init__(self, run_id, first_seq: int, pending: list[PendingEvent]):
        self.run = str(run_id)
        self.first_seq = first_seq
        self.pending = pending
        self.at = timezone.now()
        at_text = self.at.isoformat()
        self.messages = [{"run": self.run, "seq": first_seq + i, "type": e.type, "node_id": e.node_id,
                          "payload": e.payload, "actor": e.actor, "at": at_text} for i, e in enumerate(pending)]

    @functools.cached_property
    def send(self) -> dict | None:
        return _postgres_send_params(self.run, self.messages)

    def params(self) -> dict:
        """EVENTS_INSERT's parameters but %(run)s (which takes the run's UUID), and MESSAGES_INSERT's."""
        return {"first": self.first_seq, "at": self.at, **(self.send or {}),
                "events": json.dumps([{"type": e.type, "node_id": e.node_id, "payload": e.payload, "actor": e.actor}
                                      for e in self.pending])}

    def publish_on_commit(self) -> None:
        """Send the messages once the transaction commits (or, if their rows went in with the events, purge
        expired ones)."""
        if self.send is None:
            transaction.on_commit(lambda: publish(self.run, self.messages))
        else:
            transaction.on_commit(purge_expired_messages)


def events_write(run_id, first_seq: int, pending: list[PendingEvent], *,
                 run_counters: tuple[int, int] | None = None, run_changes: dict | None = None):
    """Insert ``pending`` as seq first_seq, first_seq+1, ... and publish them once the transaction commits.

    With ``run_counters`` (last_seq, unfinished_steps), the run row's counters and ``run_changes`` (model field
    name -> a value, or Now()) are set in the same statement; it returns the model fields it set and their
    values as the database has them then. Without, it returns the Event rows.
    """
    batch = EventBatch(run_id, first_seq, pending)
    if run_counters is None:
        rows = [Event(run_id=run_id, seq=first_seq + i, type=e.type, node_id=e.node_id, payload=e.payload,
                      actor=e.actor, created_at=batch.at) for i, e in enumerate(pending)]
        Event.objects.bulk_create(rows)
        transaction.on_commit(lambda: publish(batch.run, batch.messages))
        return rows
    changes = run_changes or {}
    statement, returned = _events_write(batch.send is not None,
                                        tuple((name, isinstance(value, Now)) for name, value in changes.items()))
    params = {**batch.params(), "run": run_id, "last": run_counters[0], "unfinished": run_counters[1]}
    for name, value in changes.items():
        if not isinstance(value, Now):
            field = Run._meta.get_field(name)
            params[f"c_{field.column}"] = field.get_db_prep_save(value, connection)
    with prepared_cursor() as cur:
        # With channels-postgres, the layer's rows go in with the events: its trigger NOTIFYs at commit.
        execute(cur, statement, params)
        row = cur.fetchone()
    batch.publish_on_commit()
    return list(zip(returned, row, strict=True))


def run_group(run_id: str) -> str:
    return f"run.{run_id}"


RUNS_GROUP = "runs"


def _publication(run_id: str, messages: list[dict]) -> tuple[dict, list[str]]:
    """The channel-layer message carrying ``messages`` (a run's events), and the groups it goes to."""
    groups = [run_group(run_id)]
    if any(m["type"].startswith("run.") for m in messages):
        groups.append(RUNS_GROUP)
    return {"type": "weft.events", "run": run_id, "events": messages}, groups


def publish(run_id: str, messages: list[dict]) -> None:
    """Send committed events to websocket listeners. Best effort: the Event table is the truth,
    and clients catch up from it after any gap."""
    _send(*_publication(run_id, messages), failed=f"could not publish {len(messages)} event(s) for run {run_id}")
    purge_expired_messages()


def publish_text(run_id: str, *, node_id: str, attempt: int, key: str, text: str, done: bool) -> None:
    """Send the text a model has written so far in the journaled call ``key`` of a step's attempt to the run's
    websocket listeners (``weft.stream``). Nothing is stored: the journal records the finished reply, and a
    listener that misses a message gets the whole text so far with the next."""
    message = {"type": "weft.stream", "run": run_id, "node": node_id, "attempt": attempt, "key": key,
               "text": text, "done": done}
    _send(message, [run_group(run_id)], failed=f"could not publish streamed text of run {run_id}",
          level=logging.DEBUG)


def _send(message: dict, groups: list[str], *, failed: str, level: int = logging.WARNING) -> None:
    """Send ``message`` to ``groups`` on the channel layer (unless publishing is off); log ``failed`` if that fails."""
    from django.conf import settings

    if not settings.WEFT_PUBLISH_EVENTS:
        return
    try:
        from asgiref.sync import async_to_sync
        from channels.layers import get_channel_layer

        layer = get_channel_layer()
        if layer is None:
            return
        if _is_postgres_layer(layer):
            _postgres_group_send(layer, groups, message)
        else:
            for group in groups:
                async_to_sync(layer.group_send)(group, message)
    except Exception:  # never let a listener problem fail a committed transition or a model call
        log.log(level, failed, exc_info=True)


def _postgres_send_params(run_id: str, messages: list[dict]) -> dict | None:
    """With the channels-postgres layer, the parameters that make the events statement publish ``messages``
    too (the same rows ``_postgres_group_send`` writes); None when publishing works otherwise or is off."""
    from django.conf import settings

    if not settings.WEFT_PUBLISH_EVENTS:
        return None
    try:
        from channels.layers import get_channel_layer

        layer = get_channel_layer()
        if layer is None or not _is_postgres_layer(layer):
            return None
        return _postgres_rows(layer, *_publication(run_id, messages))
    except Exception:  # publish after commit instead, best effort as ever
        log.warning("could not prepare %d event(s) of run %s for the channel layer", len(messages), run_id,
                    exc_info=True)
        return None


def _is_postgres_layer(layer) -> bool:
    from channels_postgres.core import PostgresChannelLayer

    if not isinstance(layer, PostgresChannelLayer):
        return False
    messages_tables_check()  # once: the statements write the layer's tables themselves
    return True


def _postgres_rows(layer, message: dict, groups: list[str]) -> dict:
    """The parameters of MESSAGES_INSERT: the layer's serialised message, its expiry, the groups' keys."""
    from datetime import timedelta

    return {"message": layer.serialize(message), "expire": timezone.now() + timedelta(seconds=layer.expiry),
            "groups": json.dumps([postgres_group_key(prefix=layer.prefix, group=g) for g in groups])}


def postgres_group_key(*, prefix: str, group: str) -> str:
    """The key channels-postgres stores a group's memberships under (its private ``_group_key``, 1.1.4)."""
    return f"{prefix}:group:{group}"


def _postgres_group_send(layer, groups: list[str], message: dict) -> None:
    """channels-postgres ``group_send`` as one synchronous INSERT on this process's database connection.

    The layer's own ``group_send`` is async and keeps a connection pool bound to the event loop
    that first used it; called from synchronous code (workers) every call runs in a new loop.
    This writes the same rows (one message per channel in the groups; the table's trigger
    NOTIFYs the listening web servers) without an event loop or a second pool.
    """
    with connection.cursor() as cur:
        execute(cur, MESSAGES_INSERT, _postgres_rows(layer, message, groups))


PURGE_INTERVAL_S = 30.0
_last_purge = 0.0


def purge_expired_messages(*, force: bool = False) -> int:
    """Delete channels-postgres messages past their expiry (the layer itself only purges lazily).

    Called after publishing, at most every PURGE_INTERVAL_S per process: every process that adds
    messages also removes the expired ones, so the table holds about a minute of messages.
    Returns the number of rows deleted.
    """
    import time

    from channels.layers import get_channel_layer

    global _last_purge
    now = time.monotonic()
    if not force and now - _last_purge < PURGE_INTERVAL_S:
        return 0
    _last_purge = now
    layer = get_channel_layer()
    if layer is None or not _is_postgres_layer(layer):
        return 0
    try:
        with connection.cursor() as cur:
            execute(cur, _PURGE, {})
            return cur.rowcount
    except Exception:  # best effort, like publishing
        log.warning("could not purge expired channel-layer messages", exc_info=True)
        return 0
