"""Named queues -> django-q2 clusters; enqueue steps through the ORM broker.

The broker row is written on the caller's connection, so inside a transaction
it commits (or rolls back) with the state change that queued the step.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from django.conf import settings
from django.db import connection
from django.utils import timezone
from django_q.models import OrmQ
from django_q.signing import SignedPackage

EXECUTE_FUNC = "engine.executor.execute_step"


@dataclass(frozen=True)
class Delivery:
    run_id: str
    step_id: int
    attempt: int
    queue: str


def queue_names() -> list[str]:
    return list(settings.WEFT_QUEUES)


def enqueue(deliveries: list[Delivery]) -> None:
    """Write one broker row per delivery and remember its id on the step (for orphan detection)."""
    if not deliveries:
        return
    now = timezone.now()
    rows = [
        OrmQ(
            key=d.queue,
            payload=SignedPackage.dumps(
                {
                    "id": uuid.uuid4().hex,
                    "name": f"step-{d.step_id}-{d.attempt}",
                    "func": EXECUTE_FUNC,
                    "args": (d.run_id, d.step_id, d.attempt),
                    "kwargs": {},
                    "cluster": d.queue,
                    "ack_failure": True,
                    "started": now,
                }
            ),
            lock=now,
        )
        for d in deliveries
    ]
    OrmQ.objects.bulk_create(rows)
    with connection.cursor() as cur:
        cur.execute(
            "UPDATE engine_steprun s SET broker_msg_id = v.mid FROM unnest(%s::bigint[], %s::bigint[]) AS v(id, mid) "
            "WHERE s.id = v.id",
            [[d.step_id for d in deliveries], [r.pk for r in rows]],
        )
