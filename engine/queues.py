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
            lock=Now(),  # visible from the database's now, whatever this machine's clock says
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
