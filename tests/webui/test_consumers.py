"""Websocket consumers through the real ASGI application (session auth, origin check) and the
real channels-postgres layer on the test database."""

from __future__ import annotations

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.test import Client

from config.asgi import application
from engine.core.events import purge_expired_messages
from engine.models import Run
from engine.services.scheduler import run_cancel, run_start, step_complete
from engine.services.workflows import workflow_save
from tests.conftest import chain
from tests.webui.conftest import make_user, run_async

pytestmark = pytest.mark.django_db(transaction=True, databases=["default", "channels_postgres"])

ORIGIN = (b"origin", b"http://localhost")


def session_headers(user=None, origin=ORIGIN) -> list[tuple[bytes, bytes]]:
    headers = [(b"host", b"localhost")]
    if origin:
        headers.append(origin)
    if user is not None:
        client = Client()
        client.force_login(user)
        cookie = client.cookies[settings.SESSION_COOKIE_NAME].value
        headers.append((b"cookie", f"{settings.SESSION_COOKIE_NAME}={cookie}".encode()))
    return headers


def start_run(slug="ws-chain", n=3) -> Run:
    wf = workflow_save(definition=chain(slug, n))[0]
    return run_start(workflow=wf, inputs={})[0]


async def closed_with(path: str, headers) -> int | None:
    comm = WebsocketCommunicator(application, path, headers=headers)
    connected, code = await comm.connect()
    if not connected:
        return code if code is not None else 1000
    out = await comm.receive_output(timeout=3)
    await comm.disconnect()
    assert out["type"] == "websocket.close", out
    return out.get("code")


def test_unauthenticated_socket_is_closed(live_layer):
    run = start_run()

    async def scenario():
        assert await closed_with(f"/ws/runs/{run.pk}/", session_headers()) == 4401
        assert await closed_with("/ws/runs/", session_headers()) == 4401

    run_async(scenario)


def test_socket_for_a_user_without_a_role_is_closed(live_layer):
    run = start_run()
    headers = session_headers(make_user("nobody"))

    async def scenario():
        assert await closed_with(f"/ws/runs/{run.pk}/", headers) == 4403
        assert await closed_with("/ws/runs/", headers) == 4403

    run_async(scenario)


def test_socket_for_an_unknown_run_is_closed(live_layer):
    headers = session_headers(make_user("viewer1", "viewer"))

    async def scenario():
        assert await closed_with("/ws/runs/00000000-0000-0000-0000-000000000000/", headers) == 4404
        assert await closed_with("/ws/runs/not-a-uuid/", headers) == 4404

    run_async(scenario)


def test_socket_from_a_foreign_origin_is_refused(live_layer):
    run = start_run()
    viewer = make_user("viewer2", "viewer")
    headers = session_headers(viewer, origin=(b"origin", b"http://evil.example"))

    async def scenario():
        comm = WebsocketCommunicator(application, f"/ws/runs/{run.pk}/", headers=headers)
        connected, _ = await comm.connect()
        assert connected is False  # the handshake itself is refused

    run_async(scenario)


def test_snapshot_on_connect_then_only_newer_events_in_order(live_layer):
    run = start_run()
    headers = session_headers(make_user("viewer3", "viewer"))

    async def scenario():
        comm = WebsocketCommunicator(application, f"/ws/runs/{run.pk}/", headers=headers)
        connected, _ = await comm.connect()
        assert connected
        snap = await comm.receive_json_from(timeout=5)
        assert snap["type"] == "snapshot"
        last = await database_sync_to_async(lambda: Run.objects.get(pk=run.pk).last_seq)()
        assert snap["last_seq"] == last > 0
        assert {s["node_id"]: s["status"] for s in snap["steps"]} == {"s1": "queued", "s2": "pending",
                                                                      "s3": "pending"}
        assert [n["id"] for n in snap["definition"]["nodes"]] == ["s1", "s2", "s3"]
        assert set(snap["layout"]) == {"s1", "s2", "s3"}
        # A transition committed now arrives as events after the snapshot's seq.
        await database_sync_to_async(step_complete)(run_id=run.pk, node_id="s1", output={"x": 1}, actor="tester")
        received = []
        while not any(e["node_id"] == "s2" and e["type"] == "step.queued" for e in received):
            msg = await comm.receive_json_from(timeout=5)
            assert msg["type"] == "events"
            received.extend(msg["events"])
        seqs = [e["seq"] for e in received]
        assert seqs == list(range(last + 1, last + 1 + len(seqs)))
        s1 = next(e for e in received if e["node_id"] == "s1")
        assert s1["type"] == "step.succeeded" and s1["actor"] == "tester" and s1["at"]
        # A stale or repeated publication (seq already delivered) is not forwarded again.
        await live_layer.group_send(f"run.{run.pk}", {"type": "weft.events", "run": str(run.pk), "events": received})
        await database_sync_to_async(run_cancel)(run_id=run.pk, actor="tester")
        msg = await comm.receive_json_from(timeout=5)
        assert msg["type"] == "events"
        assert msg["events"][0]["seq"] == seqs[-1] + 1
        assert "run.cancelled" in [e["type"] for e in msg["events"]]
        await comm.disconnect()

    run_async(scenario)


def test_run_list_socket_gets_run_status_changes_with_summary(live_layer):
    headers = session_headers(make_user("op1", "operator"))
    wf = workflow_save(definition=chain("ws-list", 2))[0]

    async def scenario():
        comm = WebsocketCommunicator(application, "/ws/runs/", headers=headers)
        connected, _ = await comm.connect()
        assert connected
        assert (await comm.receive_json_from(timeout=5))["type"] == "hello"
        run, _ = await database_sync_to_async(run_start)(workflow=wf, inputs={})
        msg = await comm.receive_json_from(timeout=5)
        assert msg["type"] == "run"
        assert msg["run"]["id"] == str(run.pk) and msg["run"]["workflow"] == "ws-list"
        assert msg["run"]["status"] == "running"
        assert [e["type"] for e in msg["events"]] == ["run.running"]
        await database_sync_to_async(run_cancel)(run_id=run.pk)
        msg = await comm.receive_json_from(timeout=5)
        assert msg["run"]["status"] == "cancelled"
        await comm.disconnect()

    run_async(scenario)


def test_sockets_opened_together_each_get_every_message_once(live_layer):
    """Many sockets starting to receive at the same moment (browsers reconnecting after a restart) must
    not start one channel-layer listener each: every listener would deliver every message again."""
    import asyncio

    headers = session_headers(make_user("op2", "operator"))
    wf = workflow_save(definition=chain("ws-many", 2))[0]

    async def scenario():
        comms = [WebsocketCommunicator(application, "/ws/runs/", headers=headers) for _ in range(10)]
        assert all(c for c, _ in await asyncio.gather(*(c.connect() for c in comms)))
        for c in comms:
            assert (await c.receive_json_from(timeout=5))["type"] == "hello"
        run, _ = await database_sync_to_async(run_start)(workflow=wf, inputs={})
        await database_sync_to_async(run_cancel)(run_id=run.pk)
        for c in comms:
            types = [(await c.receive_json_from(timeout=5))["events"][0]["type"] for _ in range(2)]
            assert types == ["run.running", "run.cancelled"]
            assert await c.receive_nothing(timeout=0.5)  # no second copy of either
        for c in comms:
            await c.disconnect()

    run_async(scenario)


def test_closed_sockets_leave_no_queue_or_lock_behind(live_layer):
    """A web process serves sockets for weeks: what the layer keeps per socket must go when it closes
    (channels-postgres keeps a queue and a session-level advisory lock per channel it ever received on)."""
    from channels_postgres.core import ASYNCIO_EVENT_CHANNEL_MAPPING
    from django.db import connection

    run = start_run()
    headers = session_headers(make_user("viewer5", "viewer"))

    def advisory_locks() -> int:
        with connection.cursor() as cur:
            cur.execute("SELECT count(*) FROM pg_locks l JOIN pg_database d ON d.oid = l.database "
                        "WHERE l.locktype = 'advisory' AND d.datname = current_database()")
            return cur.fetchone()[0]

    async def scenario():
        async def one():
            comm = WebsocketCommunicator(application, f"/ws/runs/{run.pk}/", headers=headers)
            assert (await comm.connect())[0]
            assert (await comm.receive_json_from(timeout=5))["type"] == "snapshot"
            await comm.disconnect()

        await one()  # the layer's listener and pool exist from here on
        queues, locks = len(ASYNCIO_EVENT_CHANNEL_MAPPING), await database_sync_to_async(advisory_locks)()
        for _ in range(20):
            await one()
        assert len(ASYNCIO_EVENT_CHANNEL_MAPPING) <= queues
        assert len(live_layer._channel_advisory_locks) <= 1
        assert await database_sync_to_async(advisory_locks)() <= locks

    run_async(scenario)


def test_a_starting_listener_leaves_other_processes_messages_queued(live_layer):
    """A listener that starts (a web process starting, or its listener reconnecting) takes the messages
    queued while it was down for its own channels, and leaves those of other processes' sockets."""
    import asyncio

    from django.db import connection

    from webui.channel_layer import PostgresChannelLayer

    other = PostgresChannelLayer(**dict(connection.settings_dict))  # another web process's layer
    channels = {}

    async def scenario():
        channels["theirs"] = await other.new_channel()
        await other.send(channels["theirs"], {"type": "for.them"})  # on its way to the other process
        ours = await live_layer.new_channel()
        await live_layer.send(ours, {"type": "for.us"})  # queued before this process's listener runs
        assert (await asyncio.wait_for(live_layer.receive(ours), 10))["type"] == "for.us"

    run_async(scenario)
    with connection.cursor() as cur:
        cur.execute("SELECT count(*) FROM channels_postgres_message WHERE channel = %s", [channels["theirs"]])
        assert cur.fetchone()[0] == 1, "the other process's message was taken by this process's listener"


def test_superuser_may_watch_any_run(live_layer):
    run = start_run()
    headers = session_headers(make_user("root1", superuser=True))

    async def scenario():
        comm = WebsocketCommunicator(application, f"/ws/runs/{run.pk}/", headers=headers)
        connected, _ = await comm.connect()
        assert connected
        assert (await comm.receive_json_from(timeout=5))["type"] == "snapshot"
        await comm.disconnect()

    run_async(scenario)


def test_open_sockets_are_counted_in_the_websocket_clients_metric(live_layer):
    from tests.observability.helpers import scrape, value

    run = start_run()
    headers = session_headers(make_user("viewer4", "viewer"))

    def clients() -> float:
        return value(scrape(Client()), "weft_websocket_clients")

    async def scenario():
        count = database_sync_to_async(clients)
        before = await count()
        watch = WebsocketCommunicator(application, f"/ws/runs/{run.pk}/", headers=headers)
        assert (await watch.connect())[0]
        assert (await watch.receive_json_from(timeout=5))["type"] == "snapshot"
        listing = WebsocketCommunicator(application, "/ws/runs/", headers=headers)
        assert (await listing.connect())[0]
        assert (await listing.receive_json_from(timeout=5))["type"] == "hello"
        assert await count() == before + 2
        # A refused socket is not a client.
        assert await closed_with(f"/ws/runs/{run.pk}/", session_headers()) == 4401
        assert await count() == before + 2
        await watch.disconnect()
        assert await count() == before + 1
        await listing.disconnect()
        assert await count() == before

    run_async(scenario)


def test_expired_channel_messages_are_purged(live_layer):
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute("INSERT INTO channels_postgres_message (channel, message, expire) VALUES "
                    "('a', 'x', now() - interval '1 minute'), ('b', 'y', now() + interval '1 minute')")
    assert purge_expired_messages(force=True) == 1
    with connection.cursor() as cur:
        cur.execute("SELECT channel FROM channels_postgres_message")
        assert [r[0] for r in cur.fetchall()] == ["b"]


def _redis_reachable() -> bool:
    import socket

    try:
        socket.create_connection(("127.0.0.1", 6379), timeout=0.5).close()
        return True
    except OSError:
        return False


@pytest.mark.skipif(not _redis_reachable(), reason="no Redis at 127.0.0.1:6379")
def test_events_reach_the_socket_over_redis_pubsub(transactional_db, settings):
    import uuid

    from channels.layers import channel_layers

    settings.CHANNEL_LAYERS = {"default": {
        "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
        "CONFIG": {"hosts": ["redis://127.0.0.1:6379/0"], "prefix": f"weft-test-{uuid.uuid4().hex[:8]}"},
    }}
    channel_layers.backends.clear()
    run = start_run("ws-redis", 2)
    headers = session_headers(make_user("viewer-redis", "viewer"))

    async def scenario():
        comm = WebsocketCommunicator(application, f"/ws/runs/{run.pk}/", headers=headers)
        connected, _ = await comm.connect()
        assert connected
        snap = await comm.receive_json_from(timeout=5)
        await database_sync_to_async(run_cancel)(run_id=run.pk)
        msg = await comm.receive_json_from(timeout=5)
        assert msg["events"][0]["seq"] == snap["last_seq"] + 1
        assert "run.cancelled" in [e["type"] for e in msg["events"]]
        await comm.disconnect()
        await channel_layers["default"].flush()

    try:
        run_async(scenario)
    finally:
        channel_layers.backends.clear()
