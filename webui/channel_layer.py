"""The channels-postgres layer, with one LISTEN task per event loop and nothing kept for closed sockets.

channels-postgres 1.1.4 starts its LISTEN task from ``receive()`` whenever no listener is *running* yet,
and a listener only counts as running once its connection is open and listening. Every consumer that
starts receiving in that window (twenty sockets opening together, or every browser reconnecting at once
after the web server restarts) starts one more listener, and each listener puts every notification on
the channel's queue: every message then reached each socket once per listener (8 and 20 copies seen
under tests/chaos/test_load.py). Here a second listener is never started while one is starting or
running in the same loop; one that stops (its connection died) lets the next ``receive()`` start another.

It also keeps, for every channel it ever received on, a queue (module-level) and a session-level
advisory lock in the database (held by whichever pooled connection took it, so never released): a web
process grew by every websocket it ever served (12.8 MB in a 10-minute soak), and Postgres' lock table
with it. A websocket's channel is process-specific (``specific.<prefix>!<id>``): no other process
receives on it, so it needs no lock, and its queue goes when its consumer stops receiving.

And a starting listener first takes (deletes) every queued message in the table, whichever process it
was meant for: a web process that started, or whose listener reconnected, while another one had messages
on their way to its sockets took those messages from it. Here a listener takes only what it can deliver:
messages for this process's own specific channels, and for shared (non-specific) channels.

Upstream also takes the queued messages before it LISTENs: a message written in between was neither taken nor
notified, and waited in the table until the next listener started (a socket that connected as its process
started missed the first events after it). Here the listener LISTENs first, then takes what was queued; a
message written in between is both taken and notified, and its notification is dropped.

All of this leans on the layer's private methods; tests/webui/test_channels_postgres_internals.py fails when an
upgrade changes them.
"""

from __future__ import annotations

import asyncio
import base64

import psycopg
from channels_postgres.core import ASYNCIO_EVENT_CHANNEL_MAPPING
from channels_postgres.core import PostgresChannelLayer as _UpstreamLayer
from channels_postgres.db import MESSAGE_TABLE, utc_now
from psycopg import sql

_TAKE_QUEUED_SQL = sql.SQL(
    """
    DELETE FROM {table}
    WHERE id IN (
        SELECT id FROM {table}
        WHERE expire > %(now)s AND (position('!' in channel) = 0 OR channel LIKE %(own)s)
        FOR UPDATE SKIP LOCKED
    )
    RETURNING id::text, channel, message, extract(epoch from expire)::text
    """
).format(table=sql.Identifier(MESSAGE_TABLE))


class PostgresChannelLayer(_UpstreamLayer):
    _listener_loop: asyncio.AbstractEventLoop | None = None

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # The layer turns the database dict into a libpq connection string; psycopg's prepare_threshold (set
        # for Weft's own connections, see config/settings.py) is no libpq option. The layer prepares its
        # statements itself. (DatabaseLayer holds this same dict.)
        self.db_params.pop("prepare_threshold", None)
        self.django_db.retrieve_non_expired_queued_messages = self._take_queued_messages

    async def _take_queued_messages(self) -> list[tuple]:
        """The messages queued while no listener ran that this process can deliver (see the module doc)."""
        pool = await self.django_db.get_db_pool(db_params=self.db_params)
        async with pool.connection() as conn, conn.cursor() as cursor:
            await cursor.execute(_TAKE_QUEUED_SQL, {"now": utc_now(), "own": f"%.{self.client_prefix}!%"})
            return await cursor.fetchall()

    def _get_or_create_listener_task(self):
        running, new = super()._get_or_create_listener_task()
        if not new:
            return running, False
        loop = asyncio.get_running_loop()
        if self._listener_loop is loop:
            return running, False  # one is already starting in this loop: wait for it
        self._listener_loop = loop
        return running, True

    async def listen_to_all_channels(self) -> None:
        """Upstream's listener, LISTENing before it takes the queued messages (see the module doc)."""
        try:
            conninfo = psycopg.conninfo.make_conninfo(conninfo="", **self.db_params)
            async with await psycopg.AsyncConnection.connect(conninfo=conninfo, autocommit=True) as connection:
                await connection.execute("LISTEN channels_postgres_messages;")
                taken = set()
                for message_id, channel, message, expire in sorted(await self._take_queued_messages(),
                                                                    key=lambda row: int(row[0])):
                    taken.add(message_id)
                    payload = f"{message_id}:{channel}:{base64.b64encode(message).decode()}:{expire}"
                    self._get_or_create_queue(channel).put_nowait(payload)
                self.listener_task_is_running.set()
                async for event in connection.notifies():
                    if event.payload == "1:shutdown":
                        break
                    message_id, channel = event.payload.split(":", 2)[:2]
                    if message_id in taken:
                        taken.discard(message_id)  # written while the queue was being taken: already queued
                        continue
                    if self._channel_advisory_locks.get(channel, False):
                        self._get_or_create_queue(channel).put_nowait(event.payload)
        finally:
            self._listener_loop = None
            if self.listener_task_is_running is not None:
                self.listener_task_is_running.clear()

    async def _get_or_create_channel_advisory_lock(self, channel: str) -> bool:
        if "!" in channel:
            self._channel_advisory_locks[channel] = True  # the listener queues only channels listed here
            return True
        return await super()._get_or_create_channel_advisory_lock(channel)

    async def receive(self, channel: str) -> dict:
        try:
            return await super().receive(channel)
        except asyncio.CancelledError:
            # The consumer stopped (its socket closed): channels cancels its pending receive.
            if "!" in channel:
                self._channel_advisory_locks.pop(channel, None)
                ASYNCIO_EVENT_CHANNEL_MAPPING.pop(channel, None)
            raise
