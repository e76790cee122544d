"""A step queued by the transition that made it ready gets its broker message's id in that same update
(engine.core.transitions.steps_queue_ready), and engine.core.queues.enqueue writes the message with it."""

from __future__ import annotations

import pytest
from django.db import connection
from django_q.models import OrmQ
from django_q.signing import SignedPackage

from engine.models import StepRun
from engine.services.scheduler import run_start
from engine.services.workflows import workflow_save
from tests.conftest import definition, deliver_one, node

pytestmark = pytest.mark.django_db

WIDTH = 40


def step_updates() -> int:
    """Row updates of the step table in this transaction (the test's)."""
    with connection.cursor() as cur:
        cur.execute("SELECT n_tup_upd FROM pg_stat_xact_user_tables WHERE relname = 'engine_steprun'")
        row = cur.fetchone()
    return row[0] if row else 0


def test_a_fan_outs_steps_are_queued_with_their_messages_ids_in_one_update_each(settings):
    settings.WEFT_CONTINUE_MAX_S = 0  # the worker keeps none of the children: each gets a broker message
    children = [f"n{i}" for i in range(WIDTH)]
    workflow = workflow_save(definition=definition(
        "fan-enqueue", [node("root"), *[node(c) for c in children]], [("root", c) for c in children]))[0]
    run, _ = run_start(workflow=workflow)
    before = step_updates()

    assert deliver_one(run) == "succeeded"

    # The root's claim and success, then each child's upstream counter and its queueing. A third update of each
    # child, for its message's id, made a fan-out's record write its thousand children three times.
    assert step_updates() - before == 2 + 2 * WIDTH
    queued = StepRun.objects.filter(run=run, node_id__in=children)
    assert {s.status for s in queued} == {"queued"}
    messages = {m.pk: tuple(SignedPackage.loads(m.payload)["args"]) for m in OrmQ.objects.all()}
    assert messages == {s.broker_msg_id: (str(run.pk), s.pk, 1) for s in queued}


def test_a_delivery_whose_step_holds_no_message_id_gets_one_set_on_its_step():
    """Recovery and limit admission enqueue steps that hold no message id: enqueue draws one and sets it."""
    from engine.core.queues import Delivery, enqueue

    run, _ = run_start(workflow=workflow_save(definition=definition("one-enqueue", [node("a")], []))[0])
    step = StepRun.objects.get(run=run, node_id="a")
    OrmQ.objects.filter(pk=step.broker_msg_id).delete()
    StepRun.objects.filter(pk=step.pk).update(broker_msg_id=None)

    enqueue([Delivery(str(run.pk), step.pk, 1, "default")])

    step.refresh_from_db()
    message = OrmQ.objects.get()
    assert step.broker_msg_id == message.pk
    assert tuple(SignedPackage.loads(message.payload)["args"]) == (str(run.pk), step.pk, 1)
