"""What Weft relies on inside channels-postgres, checked against the installed version.

engine/core/events.py writes the layer's message rows itself (with the events, in one statement) under the
group keys the layer stores, and webui/channel_layer.py overrides private methods of the layer whose bodies
its module doc describes. An upgrade that renames one of them, changes its signature or its body, or stores
group keys another way, fails here rather than silently leaving sockets without events.
"""

from __future__ import annotations

import asyncio
import hashlib
import inspect
import re
from importlib.metadata import version
from pathlib import Path

import pytest
from channels.db import database_sync_to_async

from engine.core import events
from tests.webui.conftest import run_async

live_database = pytest.mark.django_db(transaction=True, databases=["default", "channels_postgres"])

REQUIREMENTS = Path(__file__).resolve().parents[2] / "requirements.txt"

# The upstream code webui/channel_layer.py and engine/core/events.py were written against (1.1.4): the
# sha256 of each function's source. When one changes, re-read it against those two files, then update it here.
UPSTREAM_SOURCES = {
    "core.PostgresChannelLayer.__init__": "7788c3bfb6cab039",  # db_params, django_db, client_prefix, prefix
    "core.PostgresChannelLayer._get_or_create_listener_task": "75e3c47441a9734f",
    "core.PostgresChannelLayer.listen_to_all_channels": "13b542c17aeb534b",
    "core.PostgresChannelLayer.receive": "fa5b85b61b7f0851",
    "core.PostgresChannelLayer._get_or_create_channel_advisory_lock": "4ce7c30cb431450b",
    "core.PostgresChannelLayer._get_or_create_queue": "443a996bb2e3e8e3",
    "core.PostgresChannelLayer._group_key": "9e081c88f2d256d0",
    "db.DatabaseLayer.retrieve_non_expired_queued_messages": "75d077d3e0402ba2",
    "db.DatabaseLayer.send_to_channel": "acf5c333e713f748",
    "db.DatabaseLayer.add_channel_to_group": "d09d47a518307ab7",
    "db.DatabaseLayer.get_db_pool": "475929380e565ad8",
}

# The private names and their signatures, as the overrides and callers use them.
UPSTREAM_SIGNATURES = {
    "core.PostgresChannelLayer._get_or_create_listener_task": "(self) -> tuple[asyncio.locks.Event, bool]",
    "core.PostgresChannelLayer.listen_to_all_channels": "(self) -> None",
    "core.PostgresChannelLayer._get_or_create_channel_advisory_lock": "(self, channel: str) -> bool",
    "core.PostgresChannelLayer._group_key": "(self, group: str) -> str",
    "db.DatabaseLayer.retrieve_non_expired_queued_messages": "(self) -> list[tuple[str, str, bytes, str]]",
    "db.DatabaseLayer.get_db_pool":
        "(self, db_params: dict[str, typing.Any]) -> psycopg_pool.pool_async.AsyncConnectionPool",
}


def _upstream(dotted: str):
    import importlib

    module, *path = dotted.split(".")
    obj = importlib.import_module(f"channels_postgres.{module}")
    for name in path:
        obj = getattr(obj, name, None)
        assert obj is not None, f"channels_postgres.{dotted} no longer exists"
    return obj


def test_the_installed_channels_postgres_is_the_pinned_one():
    pins = re.findall(r"^channels-postgres==(\S+)", REQUIREMENTS.read_text(), re.M)
    assert pins == [version("channels-postgres")], f"requirements.txt pins {pins}, {version('channels-postgres')} runs"


@pytest.mark.parametrize("dotted", sorted(UPSTREAM_SIGNATURES))
def test_the_private_names_weft_uses_keep_their_signatures(dotted):
    assert str(inspect.signature(_upstream(dotted))) == UPSTREAM_SIGNATURES[dotted]


@pytest.mark.parametrize("dotted", sorted(UPSTREAM_SOURCES))
def test_the_upstream_code_weft_overrides_or_imitates_is_unchanged(dotted):
    digest = hashlib.sha256(inspect.getsource(_upstream(dotted)).encode()).hexdigest()[:16]
    assert digest == UPSTREAM_SOURCES[dotted], (
        f"channels_postgres.{dotted} changed: re-read webui/channel_layer.py and engine/core/events.py against it")


def test_the_module_level_names_weft_imports_are_there():
    from channels_postgres.core import ASYNCIO_EVENT_CHANNEL_MAPPING
    from channels_postgres.db import GROUP_CHANNEL_TABLE, MESSAGE_TABLE, utc_now

    assert isinstance(ASYNCIO_EVENT_CHANNEL_MAPPING, dict)
    assert (MESSAGE_TABLE, GROUP_CHANNEL_TABLE) == ("channels_postgres_message", "channels_postgres_groupchannel")
    assert utc_now().tzinfo is not None


@live_database
def test_the_layer_keeps_the_state_the_overrides_touch(live_layer):
    assert live_layer.listener_task_is_running is None
    assert live_layer._channel_advisory_locks == {}
    assert isinstance(live_layer.db_params, dict) and "prepare_threshold" not in live_layer.db_params
    assert live_layer.django_db.retrieve_non_expired_queued_messages == live_layer._take_queued_messages
    assert re.fullmatch(r"[0-9a-f]{5}", live_layer.client_prefix)


@live_database
@pytest.mark.parametrize("group", ["runs", "run.0b6f5a43-8d8e-4f43-9b8a-3f9b1c2d4e5f"])
def test_group_keys_are_what_events_computes_itself(live_layer, group):
    assert events.postgres_group_key(prefix=live_layer.prefix, group=group) == live_layer._group_key(group)


@live_database
def test_a_message_events_writes_reaches_a_channel_the_layer_added_to_the_group(live_layer):
    """events.py writes the layer's rows itself (_postgres_group_send); the layer's own group_add and receive
    must find them: the group key, the table's columns, the serialisation and the NOTIFY all agree."""
    group = events.run_group("0b6f5a43-8d8e-4f43-9b8a-3f9b1c2d4e5f")
    message = {"type": "weft.events", "run": "r", "events": [{"seq": 1, "type": "run.started"}]}

    def send() -> None:
        from django.db import connection

        try:
            events._postgres_group_send(live_layer, [group], message)
        finally:
            connection.close()  # this thread's own connection: the test database is dropped after the tests

    async def scenario():
        channel = await live_layer.new_channel()
        await live_layer.group_add(group, channel)
        received = asyncio.ensure_future(live_layer.receive(channel))
        await asyncio.sleep(0.5)  # the listener is up: the message comes through its NOTIFY
        await database_sync_to_async(send)()
        assert await asyncio.wait_for(received, 10) == message

    run_async(scenario)


@live_database
def test_messages_written_while_the_listener_starts_arrive_once_each(live_layer, monkeypatch):
    """One message committed after the listener LISTENs but before it takes the queued ones (taken and notified),
    one committed after the take (notified only): each reaches the channel once (webui/channel_layer.py)."""
    group = events.run_group("5d1c2a43-8d8e-4f43-9b8a-3f9b1c2d4e5f")
    first, second = ({"type": "weft.events", "run": "r", "events": [{"seq": n, "type": "run.running"}]} for n in (1, 2))

    def send(message) -> None:
        from django.db import connection

        try:
            events._postgres_group_send(live_layer, [group], message)
        finally:
            connection.close()

    take = live_layer._take_queued_messages

    async def take_between_two_messages():
        await database_sync_to_async(send)(first)
        rows = await take()
        await database_sync_to_async(send)(second)
        return rows

    monkeypatch.setattr(live_layer, "_take_queued_messages", take_between_two_messages)
    monkeypatch.setattr(live_layer.django_db, "retrieve_non_expired_queued_messages", take_between_two_messages)

    async def scenario():
        channel = await live_layer.new_channel()
        await live_layer.group_add(group, channel)
        assert await asyncio.wait_for(live_layer.receive(channel), 10) == first
        assert await asyncio.wait_for(live_layer.receive(channel), 10) == second
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(live_layer.receive(channel), 1)

    run_async(scenario)
