"""The channels-postgres layer, with one LISTEN task per event loop.

channels-postgres 1.1.4 starts its LISTEN task from ``receive()`` whenever no listener is *running* yet,
and a listener only counts as running once its connection is open and listening. Every consumer that
starts receiving in that window (twenty sockets opening together, or every browser reconnecting at once
after the web server restarts) starts one more listener, and each listener puts every notification on
the channel's queue: every message then reached each socket once per listener (8 and 20 copies seen
under tests/chaos/test_load.py). Here a second listener is never started while one is starting or
running in the same loop; one that stops (its connection died) lets the next ``receive()`` start another.
"""

from __future__ import annotations

import asyncio

from channels_postgres.core import PostgresChannelLayer as _UpstreamLayer


class PostgresChannelLayer(_UpstreamLayer):
    _listener_loop: asyncio.AbstractEventLoop | None = None

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
        try:
            await super().listen_to_all_channels()
        finally:
            self._listener_loop = None
            if self.listener_task_is_running is not None:
                self.listener_task_is_running.clear()
