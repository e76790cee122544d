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
        async_to_sync(layer.group_send)(run_group(run_id), message)
        if any(m["type"].startswith("run.") for m in messages):
            async_to_sync(layer.group_send)(RUNS_GROUP, message)
    except Exception:  # never let a listener problem fail a committed transition
        log.warning("could not publish %d event(s) for run %s", len(messages), run_id, exc_info=True)
