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
from engine.statements import execute, load
from engine.states import StepStatus

EXECUTE_FUNC = "engine.worker.executor.execute_step"
_SQL = load(__file__, "sql/queues.sql")


@dataclass(frozen=True)
class Delivery:
    run_id: str
    step_id: int
    attempt: int
    queue: str
    priority: int = 0  # the step's: its run's plus its node's (step_priority)
    msg_id: int | None = None  # the id of its broker message, when the step already holds it (steps_queue_ready)


def step_priority(run_priority: int, node_priority: int) -> int:
    """A step's priority in its queue: its run's plus its node's."""
    return run_priority + node_priority


def aging_s() -> float:
    """Seconds of waiting worth one point of priority (WEFT_PRIORITY_AGING_S).

    A broker row's rank is the time it was queued minus its priority times this: the queue is served in rank
    order, which is the order of priority plus age / aging_s, highest first, without anything to update while
    rows wait. So a step of priority 0 queued ten aging periods before one of priority 10 goes first."""
    return float(settings.WEFT_PRIORITY_AGING_S)


def queue_names() -> list[str]:
    return list(settings.WEFT_QUEUES)


def enqueue(deliveries: list[Delivery]) -> None:
    """Write one broker row per delivery and remember its id on the step (for orphan detection), unless the step
    holds it already (``msg_id``)."""
    if not deliveries:
        return
    with prepared_cursor() as cur:
        execute(cur, _ENQUEUE, {"steps": [d.step_id for d in deliveries], "keys": [d.queue for d in deliveries],
                                "payloads": delivery_payloads(deliveries), "channels": notify_channels(deliveries),
                                "priorities": [d.priority for d in deliveries], "aging": aging_s(),
                                "messages": [d.msg_id for d in deliveries]})


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


# The broker rows, their ids on the steps and the queues' NOTIFY, in one statement (queues.sql).
_ENQUEUE = _SQL["enqueue"]


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
        execute(cur, _SQL["queue_stats"], {"names": queue_names(), "stale": WORKER_STALE_S,
                                           "queued": StepStatus.QUEUED, "running": StepStatus.RUNNING})
        rows = cur.fetchall()
    return [
        {"name": name, "clusters_online": clusters, "workers_online": int(workers), "depth": depth,
         "running": running, "oldest_queued_s": float(oldest) if oldest is not None else None,
         "finished_last_minute": finished, **{k: settings.WEFT_QUEUES[name][k] for k in ("workers", "timeout")}}
        for name, clusters, workers, depth, running, oldest, finished in rows
    ]
