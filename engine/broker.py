"""django-q2 broker for Weft: the ORM broker with SKIP LOCKED dequeue and a short visibility window.

django-q2's own ORM broker locks a message for ``retry`` seconds from the moment a
pusher *prefetches* it. If that cluster dies, the message stays invisible for the
whole window (hours on a queue for long steps), and the step sits in ``queued``.
Weft does not need the broker for exactly-once: a delivery only runs a step if its
compare-and-set claim wins, and the claim deletes the message. So this broker hides a
prefetched message for WEFT_BROKER_VISIBILITY_S only; a message that comes back while
its step is running or finished is claimed by nobody and dropped.
"""

from __future__ import annotations

from datetime import timedelta
from time import sleep

from django.conf import settings
from django.db import connections
from django.utils import timezone
from django_q.brokers.orm import ORM
from django_q.conf import Conf

_DEQUEUE_SQL = """
UPDATE django_q_ormq SET lock = %(until)s
WHERE id IN (
    SELECT id FROM django_q_ormq WHERE key = %(key)s AND lock < %(now)s
    ORDER BY id LIMIT %(bulk)s FOR UPDATE SKIP LOCKED
)
RETURNING id, payload
"""


class WeftBroker(ORM):
    def timeout(self, task=None):
        return timezone.now() + timedelta(seconds=settings.WEFT_BROKER_VISIBILITY_S)

    def dequeue(self):
        self.get_connection()  # closes a stale connection (e.g. after a database restart)
        now = timezone.now()
        with connections[Conf.ORM].cursor() as cur:
            cur.execute(_DEQUEUE_SQL, {"until": self.timeout(), "key": self.list_key, "now": now,
                                       "bulk": Conf.BULK})
            rows = cur.fetchall()
        if rows:
            return [(pk, payload) for pk, payload in sorted(rows)]
        sleep(Conf.POLL)
        return None
