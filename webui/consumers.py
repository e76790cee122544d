"""Websocket consumers: one run's events, and the run list's status changes.

Protocol (docs/ui.md): after connecting, the client receives
``{"type": "snapshot", "last_seq": N, ...}`` and then ``{"type": "events", "events": [...]}``
with every event whose seq is above N, in order. Events are published after commit by
``engine.core.events.publish``; a client that reconnects fetches ``/api/runs/<id>/events/?after=<seq>``
for what it missed.
"""

from __future__ import annotations

import uuid
from collections import OrderedDict

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from engine.core.events import RUNS_GROUP, run_group
from engine.models import Run
from engine.observability.metrics import websocket_closed, websocket_opened
from webui.access import can_view
from webui.snapshot import run_snapshot, run_summary, snapshot_json

# Close codes (4000-4999 are the application's): the client does not retry these.
CLOSE_UNAUTHENTICATED = 4401
CLOSE_FORBIDDEN = 4403
CLOSE_NOT_FOUND = 4404


class RunConsumer(AsyncJsonWebsocketConsumer):
    """``/ws/runs/<run id>/``: a snapshot of the run, then its events as they commit."""

    @classmethod
    async def encode_json(cls, content) -> str:
        return snapshot_json(content)  # a snapshot's JSON columns as read, its timestamps as isoformat writes them

    async def connect(self):
        self.group = None
        self.last_seq = 0
        code = await self._refusal()
        if code:
            await self.accept()
            await self.close(code=code)
            return
        run_id = self.scope["url_route"]["kwargs"]["run_id"]
        # Subscribe before reading the snapshot: an event committed in between arrives on the
        # group and is dropped below if the snapshot already includes it.
        self.group = run_group(run_id)
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()
        websocket_opened()
        try:
            snapshot = await database_sync_to_async(run_snapshot)(run_id)
        except Run.DoesNotExist:  # deleted since the check above
            await self.close(code=CLOSE_NOT_FOUND)
            return
        self.last_seq = snapshot["last_seq"]
        await self.send_json({"type": "snapshot", **snapshot})

    async def _refusal(self) -> int | None:
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            return CLOSE_UNAUTHENTICATED
        if not await database_sync_to_async(can_view)(user):
            return CLOSE_FORBIDDEN
        try:
            run_id = uuid.UUID(str(self.scope["url_route"]["kwargs"]["run_id"]))
        except ValueError:
            return CLOSE_NOT_FOUND
        if not await Run.objects.filter(pk=run_id).aexists():
            return CLOSE_NOT_FOUND
        return None

    async def disconnect(self, code):
        if self.group:
            websocket_closed()
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def receive_json(self, content, **kwargs):
        if content.get("type") == "ping":
            await self.send_json({"type": "pong", "last_seq": self.last_seq})

    async def weft_events(self, message):
        fresh = [e for e in message["events"] if e["seq"] > self.last_seq]
        if not fresh:
            return
        self.last_seq = max(e["seq"] for e in fresh)
        await self.send_json({"type": "events", "run": message["run"], "events": fresh})

    async def weft_stream(self, message):
        """The text a model has written so far in a step's journaled call (engine.core.streaming): not an event,
        nothing to catch up on."""
        await self.send_json({"type": "stream", **{k: message[k] for k in ("node", "attempt", "key", "text", "done")}})


class RunListConsumer(AsyncJsonWebsocketConsumer):
    """``/ws/runs/``: every run's status changes (run.* events) with the run's summary."""

    async def connect(self):
        self.joined = False
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.accept()
            await self.close(code=CLOSE_UNAUTHENTICATED)
            return
        if not await database_sync_to_async(can_view)(user):
            await self.accept()
            await self.close(code=CLOSE_FORBIDDEN)
            return
        await self.channel_layer.group_add(RUNS_GROUP, self.channel_name)
        self.joined = True
        await self.accept()
        websocket_opened()
        await self.send_json({"type": "hello"})

    async def disconnect(self, code):
        if self.joined:
            websocket_closed()
            await self.channel_layer.group_discard(RUNS_GROUP, self.channel_name)

    async def weft_events(self, message):
        runs = [e for e in message["events"] if e["type"].startswith("run.")]
        if not runs:
            return
        summary = await database_sync_to_async(_summary)(message["run"], max(e["seq"] for e in message["events"]))
        if summary is not None:
            await self.send_json({"type": "run", "run": summary, "events": runs})


# Every run-list socket of this process gets the same event batch: the first one to handle it reads the
# run's summary, the others reuse it (read after the batch committed, so at least as new as its events).
_SUMMARIES: OrderedDict[tuple[str, int], dict | None] = OrderedDict()
_SUMMARIES_KEPT = 2000


def _summary(run_id, seq: int) -> dict | None:
    key = (str(run_id), seq)
    if key in _SUMMARIES:
        return _SUMMARIES[key]
    run = Run.objects.select_related("workflow", "version", "created_by").filter(pk=run_id).first()
    summary = run_summary(run) if run is not None else None
    _SUMMARIES[key] = summary
    while len(_SUMMARIES) > _SUMMARIES_KEPT:
        _SUMMARIES.popitem(last=False)
    return summary
