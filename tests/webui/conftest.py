"""Fixtures for the web UI: users with roles, and a channel layer on the test database."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group, User


def make_user(username: str, *roles: str, superuser: bool = False) -> User:
    if superuser:
        return User.objects.create_superuser(username, password="pw-" + username)
    user = User.objects.create_user(username, password="pw-" + username)
    for role in roles:
        user.groups.add(Group.objects.get_or_create(name=role)[0])
    return user


@pytest.fixture
def live_layer(settings):
    """channels-postgres pointed at the test database (CHANNEL_LAYERS was read before pytest-django
    renamed the database), torn down so the test database can be dropped."""
    import channels_postgres.db as cpdb
    from channels.layers import channel_layers
    from django.db import connection

    settings.CHANNEL_LAYERS = {
        "default": {"BACKEND": "webui.channel_layer.PostgresChannelLayer", "CONFIG": dict(connection.settings_dict)}
    }
    settings.WEFT_PUBLISH_EVENTS = True
    channel_layers.backends.clear()
    cpdb.connection_pool = None
    yield channel_layers["default"]
    cpdb.connection_pool = None
    channel_layers.backends.clear()


def run_async(scenario) -> None:
    """Run ``scenario()`` in one event loop, then stop what channels-postgres started in it (its
    LISTEN task and its connection pool, both bound to this loop) so nothing outlives the test."""
    import asyncio

    import channels_postgres.db as cpdb
    from channels.layers import channel_layers

    async def wrapper():
        cpdb.is_creating_connection_pool = asyncio.Lock()  # module-global, bound to the loop that first waits on it
        try:
            await scenario()
        finally:
            pool, cpdb.connection_pool = cpdb.connection_pool, None
            if pool is not None:
                await pool.close()
            current = asyncio.current_task()
            others = [t for t in asyncio.all_tasks() if t is not current]
            for task in others:
                task.cancel()
            await asyncio.gather(*others, return_exceptions=True)
            channel_layers.backends.clear()

    # In a thread of its own with a fresh event loop: nothing a previous test left in this thread's
    # asyncio/asgiref state (a browser driver's loop, a thread-sensitive executor) can deadlock it.
    import threading

    errors: list[BaseException] = []

    def target():
        try:
            asyncio.run(wrapper())
        except BaseException as exc:  # re-raised in the test's thread
            errors.append(exc)

    thread = threading.Thread(target=target, name="weft-test-async", daemon=True)
    thread.start()
    thread.join(timeout=120)
    if thread.is_alive():
        raise AssertionError("async test scenario did not finish within 120 s")
    if errors:
        raise errors[0]
