"""The run ``bench ui`` draws, and the events it sends to the browser (docs/benchmarks.md).

The run: a root and chains of ``CHAIN`` steps under it (1,000 steps by default), every step pending while the
root waits, since no workers run. No two steps share both their upstream and their downstream steps, so the
graph draws every step (siblings that do are drawn as one group).

The events: steps marked succeeded with ``step_complete``, deepest first, so each completion is one
``step.succeeded`` event and readies nothing (the step below it has already succeeded). Completions are
due at ``rate`` a second; several sender threads, each on its own connection and with its own chains,
take whatever of theirs is due, and a sender that finds several due completes them in one transaction
(their events reach the browser together, as a busy run's do). The run row's lock orders the
transactions, so the senders add throughput only by overlapping their round trips; batching is what
keeps up when each transaction is slow.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass, field

from django.db import connection, transaction

from engine.models import Run
from engine.services.scheduler import run_cancel, run_start, step_complete
from engine.services.workflows import workflow_save

CHAIN = 20
SLUG = "bench-ui"


def chains_definition(steps: int) -> dict:
    """``root`` and ``steps - 1`` steps under it in chains of CHAIN: c00-00 -> c00-01 -> ... -> c00-19."""
    nodes = [{"id": "root", "type": "noop"}]
    edges = []
    for k in range(steps - 1):
        chain, depth = divmod(k, CHAIN)
        node_id = f"c{chain:02d}-{depth:02d}"
        nodes.append({"id": node_id, "type": "noop"})
        edges.append({"source": "root" if depth == 0 else f"c{chain:02d}-{depth - 1:02d}", "target": node_id})
    slug = f"{SLUG}-{steps}"
    return {"name": slug, "slug": slug, "nodes": nodes, "edges": edges}


def bench_run_start(steps: int) -> Run:
    """A new run of ``steps`` steps: the root queued, every other step pending."""
    workflow = workflow_save(definition=chains_definition(steps), note="bench")[0]
    return run_start(workflow=workflow)[0]


def bench_run_cancel(run_id) -> None:
    if Run.objects.filter(pk=run_id, status__in=["pending", "running"]).exists():
        run_cancel(run_id=run_id, actor="bench")


def completion_order(steps: int) -> list[str]:
    """The steps, deepest first across the chains: completing them in this order readies nothing."""
    ids = [n["id"] for n in chains_definition(steps)["nodes"][1:]]
    return sorted(ids, key=lambda node_id: (-int(node_id.split("-")[1]), node_id))


@dataclass
class Sent:
    """What the senders did: each transaction's commit time (time.time()), how many steps it completed and the
    run's last event seq it wrote."""

    commits: list[tuple[float, int, int]] = field(default_factory=list)
    started: float = 0.0
    errors: list[str] = field(default_factory=list)

    @property
    def span_s(self) -> float:
        return max(t for t, _, _ in self.commits) - self.started if self.commits else 0.0

    def committed_at(self, seq: int) -> float | None:
        """When the transaction that wrote event ``seq`` committed."""
        return min((t for t, _, last in self.commits if last >= seq), default=None)


def send_completions(*, run_id, node_ids: list[str], rate: float, senders: int = 4, batch_max: int = 50) -> Sent:
    """Complete ``node_ids`` in order, the i-th due ``i / rate`` seconds after the start, from ``senders``
    threads; returns once every one is committed. Each chain belongs to one sender, so its steps are
    completed in order (a step completed before the one below it would ready that one)."""
    lanes = [deque() for _ in range(senders)]
    for i, node_id in enumerate(node_ids):
        lanes[int(node_id[1:].split("-")[0]) % senders].append((i, node_id))
    lock = threading.Lock()
    sent = Sent(started=time.time())
    start = time.monotonic()

    def take(due: deque) -> list[str]:
        """The lane's steps due now (at most batch_max), once the first is due."""
        if (wait := start + due[0][0] / rate - time.monotonic()) > 0:
            time.sleep(wait)
        batch = []
        while due and len(batch) < batch_max and start + due[0][0] / rate <= time.monotonic():
            batch.append(due.popleft()[1])
        return batch

    def sender(due: deque):
        try:
            while due:
                batch = take(due)
                with transaction.atomic():
                    for node_id in batch:
                        step_complete(run_id=run_id, node_id=node_id, output={"bench": True}, actor="bench")
                    last_seq = Run.objects.filter(pk=run_id).values_list("last_seq", flat=True).get()
                committed = time.time()
                with lock:
                    sent.commits.append((committed, len(batch), last_seq))
        except Exception as exc:  # reported with the figures: a sender that died sent less
            sent.errors.append(repr(exc))
        finally:
            connection.close()

    threads = [threading.Thread(target=sender, args=(lane,), name=f"bench-ui-sender-{i}")
               for i, lane in enumerate(lanes) if lane]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sent
