"""Append-only run events, and their publication to the channel layer after commit.

Events are buffered by a ``RunTx`` (see runtx) and written in the same
transaction that makes them true, with gapless per-run sequence numbers.
"""

from __future__ import annotations

import functools
import json
import logging
from dataclasses import dataclass, field

from django.db import connection, transaction
from django.utils import timezone

from engine.core.dbretry import prepared_cursor
from engine.models import Event

log = logging.getLogger(__name__)


@dataclass
class PendingEvent:
    type: str
    node_id: str = ""
    payload: dict = field(default_factory=dict)
    actor: str = ""


# A batch of events (%(events)s, a JSON array of {type, node_id, payload, actor}) as seq %(first)s, %(first)s + 1, ...
# Statements that write events only when another CTE of theirs wrote something append ", that_cte" to its FROM.
EVENTS_INSERT_SQL = """INSERT INTO engine_event (run_id, seq, type, node_id, payload, actor, created_at)
    SELECT %(run)s, %(first)s + v.i - 1, v.e->>'type', v.e->>'node_id', v.e->'payload', v.e->>'actor', %(at)s
    FROM jsonb_array_elements(%(events)s::jsonb) WITH ORDINALITY AS v(e, i)"""

_WRITE_SQL = """
WITH e AS (
    """ + EVENTS_INSERT_SQL + """
)
UPDATE engine_run SET last_seq = %(last)s, unfinished_steps = %(unfinished)s{sets} WHERE id = %(run)s{returning}
"""


def _messages_insert() -> str:
    from channels_postgres.db import GROUP_CHANNEL_TABLE, MESSAGE_TABLE

    return (f"INSERT INTO {MESSAGE_TABLE} (channel, message, expire) "  # noqa: S608 (table names are constants)
            f"SELECT DISTINCT channel, %(message)s, %(expire)s FROM {GROUP_CHANNEL_TABLE} "
            "WHERE group_key = ANY(ARRAY(SELECT jsonb_array_elements_text(%(groups)s::jsonb)))")


# channels-postgres's rows for one message to some groups: one per channel in them (see _postgres_rows). The
# groups' keys come as one JSON array, not a list: psycopg adapts a list element by element, which cost 0.03-0.045 ms
# a statement here, against 0.01 ms for a text parameter. As ANY(ARRAY(...)) (computed once) the lookup reads the
# group_key index of migration engine 0006, where "IN (SELECT ...)" is planned as a scan of every membership.
MESSAGES_INSERT_SQL = _messages_insert()


def _send_sql() -> str:
    return _WRITE_SQL.replace("\nUPDATE engine_run", f""", m AS (
    {MESSAGES_INSERT_SQL}
)
UPDATE engine_run""")


_WRITE_AND_SEND_SQL = _send_sql()


class EventBatch:
    """Events about to be written as seq ``first_seq``, ``first_seq + 1``, ...: the parameters of the
    statement that writes them, and their publication once it commits.

    ``send`` holds the channel-layer rows (the parameters of MESSAGES_INSERT_SQL) when the layer is
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
        """EVENTS_INSERT_SQL's parameters but %(run)s (which takes the run's UUID), and MESSAGES_INSERT_SQL's."""
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
                 run_counters: tuple[int, int] | None = None, run_sets: tuple[list[str], dict] = ([], {}),
                 returning: str = ""):
    """Insert ``pending`` as seq first_seq, first_seq+1, ... and publish them once the transaction commits.

    With ``run_counters`` (last_seq, unfinished_steps), the run row's counters are set in the same statement,
    with ``run_sets`` (SQL assignments and their parameters) too, in one statement; it returns the
    ``returning`` columns of the updated run row then (None without). Without, it returns the Event rows.
    """
    batch = EventBatch(run_id, first_seq, pending)
    if run_counters is None:
        rows = [Event(run_id=run_id, seq=first_seq + i, type=e.type, node_id=e.node_id, payload=e.payload,
                      actor=e.actor, created_at=batch.at) for i, e in enumerate(pending)]
        Event.objects.bulk_create(rows)
        transaction.on_commit(lambda: publish(batch.run, batch.messages))
        return rows
    sets, set_params = run_sets
    sql = (_WRITE_SQL if batch.send is None else _WRITE_AND_SEND_SQL).format(
        sets="".join(f", {a}" for a in sets), returning=f" RETURNING {returning}" if returning else "")
    with prepared_cursor() as cur:
        # With channels-postgres, the layer's rows go in with the events: its trigger NOTIFYs at commit.
        cur.execute(sql, {**batch.params(), **set_params, "run": run_id, "last": run_counters[0],
                          "unfinished": run_counters[1]})
        row = cur.fetchone() if returning else None
    batch.publish_on_commit()
    return row


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
    from django.conf import settings

    if not settings.WEFT_PUBLISH_EVENTS:
        return
    try:
        from asgiref.sync import async_to_sync
        from channels.layers import get_channel_layer

        layer = get_channel_layer()
        if layer is None:
            return
        message, groups = _publication(run_id, messages)
        if _is_postgres_layer(layer):
            _postgres_group_send(layer, groups, message)
        else:
            for group in groups:
                async_to_sync(layer.group_send)(group, message)
    except Exception:  # never let a listener problem fail a committed transition
        log.warning("could not publish %d event(s) for run %s", len(messages), run_id, exc_info=True)
    purge_expired_messages()


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

    return isinstance(layer, PostgresChannelLayer)


def _postgres_rows(layer, message: dict, groups: list[str]) -> dict:
    """The parameters of MESSAGES_INSERT_SQL: the layer's serialised message, its expiry, the groups' keys."""
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
        cur.execute(MESSAGES_INSERT_SQL, _postgres_rows(layer, message, groups))


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
            cur.execute("DELETE FROM channels_postgres_message WHERE expire < now()")
            return cur.rowcount
    except Exception:  # best effort, like publishing
        log.warning("could not purge expired channel-layer messages", exc_info=True)
        return 0
