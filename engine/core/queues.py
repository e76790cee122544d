"""Named queues -> django-q2 clusters; enqueue steps through the ORM broker.

The broker row is written on the caller's connection, so inside a transaction
it commits (or rolls back) with the state change that queued the step.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from django.conf import settings
from django.db import connection
from django.db.models.functions import Now
from django.utils import timezone
from django_q.signing import SignedPackage

from engine.core.dbretry import prepared_cursor

EXECUTE_FUNC = "engine.worker.executor.execute_step"


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
    with prepared_cursor() as cur:
        cur.execute(_ENQUEUE_SQL, {"steps": [d.step_id for d in deliveries], "keys": [d.queue for d in deliveries],
                                   "payloads": delivery_payloads(deliveries),
                                   "channels": notify_channels(deliveries)})


def delivery_payloads(deliveries: list[Delivery]) -> list[str]:
    """The broker rows' payloads: django-q2's signed task, which calls execute_step(run, step, attempt)."""
    now = timezone.now()
    return [
        SignedPackage.dumps(
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
        )
        for d in deliveries
    ]


def notify_channels(deliveries: list[Delivery]) -> list[str]:
    """The channels to NOTIFY so that the deliveries' queues' idle clusters wake when they commit."""
    from engine.core.broker import notify_channel

    return sorted({notify_channel(d.queue) for d in deliveries})


# One statement: the broker rows (visible from the database's now, whatever this machine's clock says), their
# ids on the steps (for orphan detection), and a NOTIFY that wakes the queues' idle clusters at commit.
_ENQUEUE_SQL = """
WITH v AS (
    SELECT * FROM unnest(%(steps)s::bigint[], %(keys)s::text[], %(payloads)s::text[]) AS v(step, key, payload)
), m AS (
    INSERT INTO django_q_ormq (key, payload, lock) SELECT key, payload, statement_timestamp() FROM v
    RETURNING id, payload
), u AS (
    UPDATE engine_steprun s SET broker_msg_id = m.id FROM m JOIN v ON v.payload = m.payload WHERE s.id = v.step
)
SELECT pg_notify(c, '') FROM unnest(%(channels)s::text[]) AS c
"""


# -- who serves which queue (for the queue page, /readyz and the API) ------------------------------

WORKER_STALE_S = 15


def workers_heartbeat(*, host: str, clusters: dict[str, int]) -> None:
    """Record that this host's clusters (queue -> main pid) are alive."""
    from engine.models import WorkerProcess

    for queue, pid in clusters.items():  # database clock: readers compare with now() there
        WorkerProcess.objects.update_or_create(
            host=host, pid=pid, queue=queue,
            defaults={"last_seen": Now(), "workers": settings.WEFT_QUEUES[queue]["workers"]},
            create_defaults={"started_at": Now(), "last_seen": Now(),
                             "workers": settings.WEFT_QUEUES[queue]["workers"]},
        )


def workers_forget(*, host: str, pids: list[int]) -> None:
    from engine.models import WorkerProcess

    WorkerProcess.objects.filter(host=host, pid__in=pids).delete()


def queue_stats() -> list[dict]:
    """Per queue: live clusters and workers, depth, running, oldest queued age, finished in the last minute."""
    with connection.cursor() as cur:
        cur.execute(
            """
            SELECT q.name,
              (SELECT count(*) FROM engine_workerprocess w
                 WHERE w.queue = q.name AND w.last_seen > now() - make_interval(secs => %(stale)s)),
              (SELECT coalesce(sum(w.workers), 0) FROM engine_workerprocess w
                 WHERE w.queue = q.name AND w.last_seen > now() - make_interval(secs => %(stale)s)),
              (SELECT count(*) FROM engine_steprun s WHERE s.status = 'queued' AND s.queue = q.name),
              (SELECT count(*) FROM engine_steprun s WHERE s.status = 'running' AND s.queue = q.name),
              (SELECT extract(epoch FROM now() - min(s.queued_at)) FROM engine_steprun s
                 WHERE s.status = 'queued' AND s.queue = q.name),
              (SELECT count(*) FROM engine_steprun s WHERE s.queue = q.name
                 AND s.finished_at > now() - interval '1 minute')
            FROM unnest(%(names)s::text[]) AS q(name)
            """,
            {"names": queue_names(), "stale": WORKER_STALE_S},
        )
        rows = cur.fetchall()
    return [
        {"name": name, "clusters_online": clusters, "workers_online": int(workers), "depth": depth,
         "running": running, "oldest_queued_s": float(oldest) if oldest is not None else None,
         "finished_last_minute": finished, **{k: settings.WEFT_QUEUES[name][k] for k in ("workers", "timeout")}}
        for name, clusters, workers, depth, running, oldest, finished in rows
    ]
