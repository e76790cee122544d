"""Retry a short database write through a brief outage (a restart, a network blip).

Used where giving up would waste finished work: recording a step's result, journaling a sub-step.
Every write retried this way is fenced by the attempt number, so a retry can never apply a stale
result; it just gets its "no" from the database instead of from a dead socket.
"""

from __future__ import annotations

import contextlib
import logging
import select
import time
from collections.abc import Callable
from typing import TypeVar

import psycopg
from django.conf import settings
from django.db import InterfaceError, OperationalError, connection

log = logging.getLogger(__name__)
T = TypeVar("T")


def with_db_retry(fn: Callable[[], T], *, what: str) -> T:
    deadline = time.monotonic() + settings.WEFT_DB_RETRY_S
    delay = 0.2
    while True:
        try:
            return fn()
        except (OperationalError, InterfaceError) as exc:
            if connection.in_atomic_block or time.monotonic() + delay > deadline:
                raise
            log.warning("%s: database unavailable (%s); retrying in %.1f s", what,
                        str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__, delay)
            connection.close()
            time.sleep(delay)
            delay = min(delay * 2, 5.0)


@contextlib.contextmanager
def prepared_cursor():
    """A cursor on Django's connection (so in its transaction) whose statements are prepared on the server:
    the hot path's statements are parsed and planned once per connection instead of on every step.
    Errors come out as Django's, as from ``connection.cursor()``.

    Django's own cursors bind parameters on the client and never prepare (its ``prepare_threshold`` is
    None), so the preparing is asked for here, per statement. A new connection (after a database restart,
    or ``CONN_MAX_AGE``) starts with none and prepares them again.

    Like Django's own cursors, the first one of a request or task replaces a connection the server has
    closed (``connection_close_if_hung_up``).
    """
    with connection.wrap_database_errors:
        connection_close_if_hung_up()
        connection.ensure_connection()
        connection.validate_no_broken_transaction()
        with _PreparingCursor(connection.connection) as cur:
            yield cur


def connection_close_if_hung_up() -> None:
    """Django's health check (CONN_HEALTH_CHECKS) for this thread's connection, without its round trip.

    Django checks a kept connection with a "SELECT 1" before the first query of each request or task
    (django-q2's worker asks for it before every task), but only through its own cursors. A connection
    the server closed while it sat idle (a restart, ``pg_terminate_backend``) has its goodbye, or its end
    of file, waiting on the socket; a healthy idle one has nothing to read. So the check runs only when
    there is something to read, and a dead connection is closed here: the statement that follows opens
    a fresh one instead of failing on the old one and losing its task.
    """
    if (connection.connection is None or connection.health_check_done or not connection.health_check_enabled
            or connection.in_atomic_block):
        return
    if _input_waiting(connection.connection):
        connection.close_if_health_check_failed()  # the "SELECT 1": closes the connection if it is dead
    connection.health_check_done = True


def _input_waiting(conn: psycopg.Connection) -> bool:
    try:
        fd = conn.fileno()
    except psycopg.Error:  # already known to be closed
        return True
    poller = select.poll()
    poller.register(fd, select.POLLIN | select.POLLPRI)
    return bool(poller.poll(0))  # POLLHUP and POLLERR are reported whatever was asked for


_DJANGO_ONLY_OPTIONS = {"prepare_threshold", "isolation_level", "server_side_binding", "assume_role", "pool",
                        "cursor_factory", "context"}


def connect(alias: str = "default", **kwargs) -> psycopg.Connection:
    """A psycopg connection of its own to Django's database ``alias``, outside Django's connection handling
    (a LISTEN connection, a benchmark's). Takes the alias's libpq options (sslmode, options, ...), not those
    that only Django's backend reads."""
    db = settings.DATABASES[alias]
    options = {k: v for k, v in db.get("OPTIONS", {}).items() if k not in _DJANGO_ONLY_OPTIONS}
    return psycopg.connect(dbname=db["NAME"], user=db.get("USER") or None, host=db.get("HOST") or None,
                           port=db.get("PORT") or None, password=db.get("PASSWORD") or None,
                           **{**options, **kwargs})


class _PreparingCursor(psycopg.Cursor):
    def execute(self, query, params=None, *, prepare: bool | None = True, binary: bool | None = None):
        return super().execute(query, params, prepare=prepare, binary=binary)
