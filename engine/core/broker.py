"""django-q2 broker for Weft: the ORM broker with SKIP LOCKED dequeue and a short visibility window.

django-q2's own ORM broker locks a message for ``retry`` seconds from the moment a
pusher *prefetches* it. If that cluster dies, the message stays invisible for the
whole window (hours on a queue for long steps), and the step sits in ``queued``.
Weft does not need the broker for exactly-once: a delivery only runs a step if its
compare-and-set claim wins, and the claim deletes the message. So this broker hides a
prefetched message for WEFT_BROKER_VISIBILITY_S only; a message that comes back while
its step is running or finished is claimed by nobody and dropped.

Locks use the database clock (``now()``), like leases, so a worker with a wrong clock
cannot hide or expose messages early.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from time import sleep

from django.conf import settings
from django.db import DatabaseError, connections
from django.utils import timezone
from django_q.brokers.orm import ORM
from django_q.conf import Conf

from engine.core.dbretry import connect
from engine.statements import execute, load

log = logging.getLogger(__name__)

# Up to BULK visible messages of one queue, hidden for the visibility window (broker.sql says how it picks them).
DEQUEUE = load(__file__, "sql/broker.sql")["broker_dequeue"]
# While the database is away, how often to try again, whatever the queue's poll: a queue polled every few
# seconds is woken by NOTIFY, which needs the connection back first.
OUTAGE_RETRY_S = 0.5


class WeftBroker(ORM):
    def timeout(self, task=None):
        return timezone.now() + timedelta(seconds=settings.WEFT_BROKER_VISIBILITY_S)

    _outage = False

    def dequeue(self):
        """Take up to BULK visible messages. While the database is away, wait and try again (django-q2's
        pusher would otherwise log a traceback, sleep 10 s and die on every attempt)."""
        try:
            # No close_old_connections() here: with CONN_HEALTH_CHECKS it costs a "SELECT 1" on every poll.
            # A broken connection raises below and is closed there.
            with connections[Conf.ORM].cursor() as cur:
                execute(cur, DEQUEUE, {"visibility": settings.WEFT_BROKER_VISIBILITY_S, "key": self.list_key,
                                       "bulk": Conf.BULK})
                rows = cur.fetchall()
        except DatabaseError as exc:
            if not self._outage:
                log.warning("queue %s: cannot reach the database, retrying: %s", self.list_key,
                            str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__)
            self._outage = True
            connections[Conf.ORM].close()
            sleep(OUTAGE_RETRY_S)
            return None
        if self._outage:
            log.warning("queue %s: database reachable again", self.list_key)
            self._outage = False
        if rows:
            return [(pk, payload) for rank, pk, payload in sorted((rank, pk, payload) for pk, payload, rank in rows)]
        self._wait_for_notify(Conf.POLL)
        return None

    # -- waking up: enqueue() NOTIFYs the queue's channel when its rows commit ---------------------

    _listener = None

    def _wait_for_notify(self, timeout: float) -> None:
        """Sleep until a message for this queue is committed (LISTEN/NOTIFY) or ``timeout`` passes.
        The poll stays as the fallback: for messages whose visibility window ran out, or no listener.

        A new listener does not wait: a message committed before its LISTEN took effect sent its NOTIFY to
        nobody, so the queue is looked at once more first. A listener whose connection broke (a database
        restart) is replaced at the next call, not after a poll interval: a queue polled every few seconds
        would otherwise sleep through the NOTIFYs of the steps queued meanwhile."""
        if self._listener is None:
            try:
                self._listener = self._listen()
            except Exception as exc:  # the database is away, or refuses: poll until a listener can be opened
                log.debug("queue %s: cannot listen (%s); polling", self.list_key, exc)
                sleep(timeout)
            return
        try:
            for _ in self._listener.notifies(timeout=timeout, stop_after=1):
                break
        except Exception as exc:
            log.debug("queue %s: listening failed (%s); listening again", self.list_key, exc)
            self._close_listener()
            sleep(min(timeout, 0.05))  # never a busy loop, whatever breaks it

    def _listen(self):
        conn = connect(Conf.ORM, autocommit=True, connect_timeout=5)
        try:
            conn.execute(f'LISTEN "{notify_channel(self.list_key)}"')
        except Exception:
            conn.close()
            raise
        return conn

    def _close_listener(self) -> None:
        if self._listener is not None:
            try:
                self._listener.close()
            except Exception:  # already gone
                pass
            self._listener = None


def notify_channel(queue: str) -> str:
    """The LISTEN/NOTIFY channel that wakes a queue's idle cluster (queue names are letters, digits, - and _)."""
    return f"weft_queue_{queue}"
