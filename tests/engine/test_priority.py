"""Priority in a queue's claim order: the broker hands out a queue's messages highest priority first (a step's
priority is its run's plus its node's), aged so that a low priority is never starved, on every path that queues
a step: a run's one-statement start, the general path, a limit's admission and the recovery of a lost message."""

from __future__ import annotations

import time

import pytest
from django_q.models import OrmQ
from django_q.signing import SignedPackage

from engine.core.broker import WeftBroker
from engine.models import Limit, Run, StepRun
from engine.services.scheduler import run_start
from engine.services.workflows import workflow_save
from engine.worker.executor import execute_step
from engine.worker.recovery import reenqueue_orphans
from tests.conftest import definition, finished, node, wait_for

pytestmark = pytest.mark.django_db(transaction=True)

QUEUE = "slow"


def save(slug: str, *, priority: int | None = None, node_priority: int | None = None, edges=(), nodes=None,
         **node_extra):
    extra = {"priority": node_priority} if node_priority is not None else {}
    nodes = nodes or [node("n", queue=QUEUE, **extra, **node_extra)]
    return workflow_save(definition=definition(slug, nodes, list(edges),
                                               **({"priority": priority} if priority is not None else {})))[0]


def served(n: int, queue: str = QUEUE) -> list[str]:
    """The runs of the next ``n`` messages the broker hands out on ``queue``, in that order."""
    broker = WeftBroker(list_key=queue)
    order = []
    while len(order) < n:
        batch = broker.dequeue()
        assert batch, f"the broker handed out {len(order)} messages of {n}"
        order.extend(SignedPackage.loads(payload)["args"][0] for _, payload in batch)
    return order


def test_a_queue_serves_the_higher_priority_first_then_in_the_order_queued():
    plain, urgent, urgent_node = save("prio-plain"), save("prio-urgent", priority=5), save("prio-node",
                                                                                            node_priority=3)
    low = [str(run_start(workflow=plain)[0].pk) for _ in range(3)]
    first = str(run_start(workflow=urgent)[0].pk)
    by_node = str(run_start(workflow=urgent_node)[0].pk)
    explicit = str(run_start(workflow=plain, priority=9)[0].pk)
    below = str(run_start(workflow=plain, priority=-1)[0].pk)
    assert served(7) == [explicit, first, by_node, *low, below]
    assert Run.objects.get(pk=explicit).priority == 9 and Run.objects.get(pk=first).priority == 5


def test_priority_ages_so_a_long_wait_beats_a_small_priority(settings):
    settings.WEFT_PRIORITY_AGING_S = 0.5  # a point of priority per half second of waiting
    wf = save("prio-aging")
    old = str(run_start(workflow=wf)[0].pk)
    time.sleep(1.2)  # 2.4 points of age
    newer_by_two = str(run_start(workflow=wf, priority=2)[0].pk)  # 2 points: behind the old one
    newer_by_four = str(run_start(workflow=wf, priority=4)[0].pk)  # 4 points: ahead of it
    assert served(3) == [newer_by_four, old, newer_by_two]


def test_steps_queued_mid_run_carry_the_run_and_node_priority():
    """The general path (a step queued when its upstream succeeds) ranks its message like a run's first step."""
    nodes = [node("a", queue="fast"), node("b", queue=QUEUE, priority=2)]
    wf = save("prio-mid", nodes=nodes, edges=[("a", "b")])
    plain = save("prio-mid-plain")
    early = str(run_start(workflow=plain)[0].pk)
    run = run_start(workflow=wf, priority=1)[0]
    OrmQ.objects.filter(key="fast").delete()  # a's message: a runs here
    a = StepRun.objects.get(run=run, node_id="a")
    execute_step(str(run.pk), a.pk, a.attempt)
    assert StepRun.objects.get(run=run, node_id="b").status == "queued"
    assert served(2) == [str(run.pk), early]  # 1 + 2 points ahead of a message queued before it


def test_a_subworkflow_run_takes_its_parent_runs_priority():
    child = save("prio-child")
    parent = save("prio-parent", nodes=[{"id": "call", "type": "subworkflow", "config": {"workflow": "prio-child"}}])
    run = run_start(workflow=parent, priority=7)[0]
    step = StepRun.objects.get(run=run, node_id="call")
    kid = run_start(workflow=child, parent_step=step)[0]
    assert kid.priority == 7
    assert run_start(workflow=child, parent_step=step, priority=-3)[0].priority == -3


def test_a_lost_message_is_queued_again_with_its_priority(settings):
    settings.WEFT_PRIORITY_AGING_S = 1000.0
    wf = save("prio-orphan", node_priority=1)
    plain = save("prio-orphan-plain")
    run = run_start(workflow=wf, priority=2)[0]
    OrmQ.objects.all().delete()  # the message is lost
    StepRun.objects.filter(run=run).update(queued_at="2000-01-01T00:00:00Z")
    early = str(run_start(workflow=plain)[0].pk)
    assert reenqueue_orphans() == 1
    assert served(2) == [str(run.pk), early]


def test_a_limits_admission_queues_with_the_steps_priority(settings):
    settings.WEFT_PRIORITY_AGING_S = 1000.0
    Limit.objects.create(name="prio-slots", concurrency=5)
    wf = save("prio-limited", limits=[{"name": "prio-slots"}])
    plain = save("prio-limited-plain")
    early = str(run_start(workflow=plain)[0].pk)
    run = run_start(workflow=wf, priority=4)[0]
    assert served(2) == [str(run.pk), early]


def test_a_worker_runs_the_higher_priority_first(workers, tmp_path):
    """Real workers on a queue of one worker, started on a backlog: the urgent run's step runs first, then the
    others in the order they were queued."""
    path = tmp_path / "order.txt"
    wf = save("prio-workers", nodes=[node("n", "tests.note", queue=QUEUE,
                                          kwargs={"path": str(path), "value": "{{ inputs.v }}"})])
    low = [run_start(workflow=wf, inputs={"v": f"low{i}"})[0] for i in range(4)]
    urgent = run_start(workflow=wf, inputs={"v": "urgent"}, priority=10)[0]
    workers.start(queues=QUEUE)
    for run in [*low, urgent]:
        assert wait_for(finished(run.pk), timeout=60, message=f"run {run.pk}").status == "succeeded"
    assert path.read_text().split() == ["urgent", "low0", "low1", "low2", "low3"]
