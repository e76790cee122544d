"""Append-only run events, and their publication to the channel layer after commit.

Events are buffered by a ``RunTx`` (see scheduler) and written in the same
transaction that makes them true, with gapless per-run sequence numbers.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from django.db import transaction

from engine.models import Event

log = logging.getLogger(__name__)


@dataclass
class PendingEvent:
    type: str
    node_id: str = ""
    payload: dict = field(default_factory=dict)
    actor: str = ""


def events_write(run_id, first_seq: int, pending: list[PendingEvent]) -> list[Event]:
    """Insert ``pending`` as seq first_seq, first_seq+1, ... and publish them once the transaction commits."""
    rows = [
        Event(run_id=run_id, seq=first_seq + i, type=e.type, node_id=e.node_id, payload=e.payload, actor=e.actor)
        for i, e in enumerate(pending)
    ]
    Event.objects.bulk_create(rows)
    messages = [event_message(row) for row in rows]
    transaction.on_commit(lambda: publish(str(run_id), messages))
    return rows


def event_message(event: Event) -> dict:
    return {
        "run": str(event.run_id),
        "seq": event.seq,
        "type": event.type,
        "node_id": event.node_id,
        "payload": event.payload,
        "actor": event.actor,
        "at": event.created_at.isoformat() if event.created_at else None,
    }


def run_group(run_id: str) -> str:
    return f"run.{run_id}"


RUNS_GROUP = "runs"


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
        message = {"type": "weft.events", "run": run_id, "events": messages}
        groups = [run_group(run_id)]
        if any(m["type"].startswith("run.") for m in messages):
            groups.append(RUNS_GROUP)
        if _is_postgres_layer(layer):
            _postgres_group_send(layer, groups, message)
        else:
            for group in groups:
                async_to_sync(layer.group_send)(group, message)
    except Exception:  # never let a listener problem fail a committed transition
        log.warning("could not publish %d event(s) for run %s", len(messages), run_id, exc_info=True)
    purge_expired_messages()


def _is_postgres_layer(layer) -> bool:
    from channels_postgres.core import PostgresChannelLayer

    return isinstance(layer, PostgresChannelLayer)


def _postgres_group_send(layer, groups: list[str], message: dict) -> None:
    """channels-postgres ``group_send`` as one synchronous INSERT on this process's database connection.

    The layer's own ``group_send`` is async and keeps a connection pool bound to the event loop
    that first used it; called from synchronous code (workers) every call runs in a new loop.
    This writes the same rows (one message per channel in the groups; the table's trigger
    NOTIFYs the listening web servers) without an event loop or a second pool.
    """
    from datetime import timedelta

    from channels_postgres.db import GROUP_CHANNEL_TABLE, MESSAGE_TABLE
    from django.db import connection
    from django.utils import timezone

    data = layer.serialize(message)
    expire = timezone.now() + timedelta(seconds=layer.expiry)
    with connection.cursor() as cur:
        cur.execute(
            f"INSERT INTO {MESSAGE_TABLE} (channel, message, expire) "  # noqa: S608 (table names are constants)
            f"SELECT DISTINCT channel, %s, %s FROM {GROUP_CHANNEL_TABLE} WHERE group_key = ANY(%s)",
            [data, expire, [layer._group_key(g) for g in groups]],
        )


PURGE_INTERVAL_S = 30.0
_last_purge = 0.0


def purge_expired_messages(*, force: bool = False) -> int:
    """Delete channels-postgres messages past their expiry (the layer itself only purges lazily).

    Called after publishing, at most every PURGE_INTERVAL_S per process: every process that adds
    messages also removes the expired ones, so the table holds about a minute of messages.
    Returns the number of rows deleted.
    """
    import time

    from django.conf import settings
    from django.db import connection

    global _last_purge
    backend = settings.CHANNEL_LAYERS.get("default", {}).get("BACKEND", "")
    if not backend.endswith("PostgresChannelLayer"):
        return 0
    now = time.monotonic()
    if not force and now - _last_purge < PURGE_INTERVAL_S:
        return 0
    _last_purge = now
    try:
        with connection.cursor() as cur:
            cur.execute("DELETE FROM channels_postgres_message WHERE expire < now()")
            return cur.rowcount
    except Exception:  # best effort, like publishing
        log.warning("could not purge expired channel-layer messages", exc_info=True)
        return 0
