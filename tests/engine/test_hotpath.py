"""The claim and the chained success in one statement each (engine.core.hotpath)."""

from __future__ import annotations

import pytest
from django_q.models import OrmQ
from django_q.signing import SignedPackage

import weft
from engine.core import hotpath
from engine.core import inline as engine_inline
from engine.core.runtx import RunTx
from engine.models import Attempt, Event, Run, StepRun
from engine.services import scheduler
from engine.services.scheduler import run_cancel, run_start, step_skip
from engine.services.workflows import workflow_save
from engine.states import STEP_TERMINAL
from engine.worker.claim import step_claim
from tests.conftest import chain, definition, deliver_one, node

pytestmark = pytest.mark.django_db(transaction=True)


@weft.task(name="tests.hotpath.note")
def note(ctx):
    """Writes an event on its own run while it runs: another transition between its claim and its success."""
    with RunTx(ctx.run_id, actor="tests") as tx:
        tx.event("test.note", ctx.node_id)
    return {"noted": True}


def save(d):
    return workflow_save(definition=d)[0]


@pytest.fixture
def one_statement_records(monkeypatch):
    """What went through one statement: ("claim", node) for claims, ("chain", node) for claimed successors.
    The statements still do all the work."""
    records = []
    claim_one, chain_record = hotpath.step_claim_one, hotpath.chain_step_record
    finish_record = hotpath.finish_step_record

    def claim_spy(**kwargs):
        claimed = claim_one(**kwargs)
        if claimed is not None:
            records.append(("claim", claimed[0].node_id))
        return claimed

    def chain_spy(**kwargs):
        chained = chain_record(**kwargs)
        if chained is not None:
            records.append(("chain", chained[0].node_id))
        return chained

    def finish_spy(**kwargs):
        finished = finish_record(**kwargs)
        if finished is not None:
            records.append(("finish", kwargs["node_id"]))
        return finished

    monkeypatch.setattr(hotpath, "step_claim_one", claim_spy)
    monkeypatch.setattr(hotpath, "chain_step_record", chain_spy)
    monkeypatch.setattr(hotpath, "finish_step_record", finish_spy)
    return records


def general_path_only(monkeypatch) -> None:
    monkeypatch.setattr(hotpath, "step_claim_one", lambda **kwargs: None)
    monkeypatch.setattr(hotpath, "chain_successor", lambda *args, **kwargs: None)
    monkeypatch.setattr(hotpath, "finishes_run", lambda *args, **kwargs: False)


def recorded(run) -> dict:
    """Everything a run's execution wrote, without what differs between two executions (ids, times, worker)."""
    run = Run.objects.get(pk=run.pk)
    steps = StepRun.objects.filter(run=run).order_by("node_id")
    attempts = Attempt.objects.filter(step__run=run).order_by("step__node_id", "number")
    return {
        "run": (run.status, run.last_seq, run.unfinished_steps, run.outputs, run.error),
        "events": [(e.seq, e.type, e.node_id, {k: v for k, v in e.payload.items() if k != "worker"}, bool(
            e.payload.get("worker")) if e.type == "step.running" else None, e.actor)
            for e in Event.objects.filter(run=run).order_by("seq")],
        "steps": [(s.node_id, s.status, s.attempt, s.remaining_upstream, s.upstream_succeeded, s.upstream_failed,
                   s.upstream_skipped, s.output, s.error, s.lease_expires_at, bool(s.worker), s.broker_msg_id is None,
                   s.queued_at <= s.started_at <= s.finished_at) for s in steps],
        "attempts": [(a.step.node_id, a.number, a.outcome, bool(a.worker), a.error, a.logs,
                      a.queued_at <= a.started_at <= a.finished_at) for a in attempts],
    }


def test_a_chain_records_through_one_statement_exactly_what_the_general_path_records(monkeypatch,
                                                                                   one_statement_records):
    wf = save(chain("one-statement", 4, lambda i: node(f"s{i}", kwargs={"i": i})))
    fast, _ = run_start(workflow=wf)
    assert deliver_one(fast) == "succeeded"
    assert one_statement_records == [("claim", "s1"), ("chain", "s2"), ("chain", "s3"), ("chain", "s4"),
                                     ("finish", "s4")]

    general_path_only(monkeypatch)
    general, _ = run_start(workflow=wf)
    assert deliver_one(general) == "succeeded"
    assert len(one_statement_records) == 5

    assert recorded(fast) == recorded(general)
    assert recorded(fast)["run"][0] == "succeeded"
    assert [e[1] for e in recorded(fast)["events"]][:7] == [
        "run.running", "step.queued", "step.running", "step.succeeded", "step.queued", "step.running",
        "step.succeeded"]


def test_a_transition_between_claim_and_success_sends_the_success_the_general_way(one_statement_records, tmp_path):
    wf = save(definition("noted", [{"id": "a", "type": "python", "config": {"function": "tests.hotpath.note"}},
                                   node("b"), node("c")], [("a", "b"), ("b", "c")]))
    run, _ = run_start(workflow=wf)
    assert deliver_one(run) == "succeeded"
    # a's claim saw an older sequence number than its success did: a is recorded by the general path, b is not
    assert one_statement_records == [("claim", "a"), ("chain", "c"), ("finish", "c")]
    run.refresh_from_db()
    assert run.status == "succeeded"
    seqs = list(Event.objects.filter(run=run).order_by("seq").values_list("seq", flat=True))
    assert seqs == list(range(1, run.last_seq + 1))
    assert Event.objects.filter(run=run, type="test.note").count() == 1
    assert set(Attempt.objects.filter(step__run=run).values_list("number", flat=True)) == {1}


def test_a_run_with_two_sinks_finishes_through_one_statement_with_both_outputs(monkeypatch, one_statement_records,
                                                                               drain):
    # c on another queue: the worker that ran a runs b alone (not b and c as one batch), c comes by delivery
    wf = save(definition("two-sinks", [node("a"), node("b", kwargs={"i": 2}), node("c", kwargs={"i": 3}, queue="fast")],
                         [("a", "b"), ("a", "c")]))
    fast, _ = run_start(workflow=wf)
    drain()
    # b finishes while c is unfinished: only c finishes the run
    assert one_statement_records == [("claim", "a"), ("claim", "c"), ("finish", "c")]

    general_path_only(monkeypatch)
    general, _ = run_start(workflow=wf)
    drain()
    assert recorded(fast) == recorded(general)
    assert recorded(fast)["run"][:4] == ("succeeded", 11, 0, {"b": {"node": "b", "i": 2}, "c": {"node": "c", "i": 3}})


def _claimed(d: dict, node_id: str):
    """A run of definition ``d`` whose step ``node_id`` (queued: a first step) is claimed by w:1."""
    run, _ = run_start(workflow=save(d))
    step = StepRun.objects.get(run=run, node_id=node_id)
    OrmQ.objects.filter(pk=step.broker_msg_id).delete()
    claim = step_claim(run_id=run.pk, step_id=step.pk, attempt=step.attempt, worker="w:1")
    assert claim is not None and claim.run_seq == Run.objects.get(pk=run.pk).last_seq
    return run, claim


def _claimed_sink(slug: str, nodes=("s1",)):
    """A run of independent steps ``nodes`` (each a root and a sink) whose first step is claimed."""
    return _claimed(definition(slug, [node(n) for n in nodes], []), nodes[0])


def _finish(run, claim, *, seq: int) -> int | None:
    return hotpath.finish_step_record(run_id=run.pk, seq=seq, step_id=claim.step.pk, node_id=claim.step.node_id,
                                      attempt=claim.step.attempt, output={"ok": 1},
                                      attempt_row={"logs": [], "metrics": {}}, sinks=claim.graph.sinks())


def test_the_last_step_finishes_its_run_in_one_statement():
    run, claim = _claimed_sink("finish-one")
    assert _finish(run, claim, seq=claim.run_seq) == claim.run_seq + 2  # the run's last sequence number after it
    run.refresh_from_db()
    assert (run.status, run.outputs, run.error, run.unfinished_steps, run.last_seq) == (
        "succeeded", {"s1": {"ok": 1}}, "", 0, claim.run_seq + 2)
    assert run.finished_at >= run.started_at
    assert list(Event.objects.filter(run=run, seq__gt=claim.run_seq).values_list("type", "node_id", "payload")) == [
        ("step.succeeded", "s1", {"from": "running"}), ("run.succeeded", "", {"error": ""})]
    assert Attempt.objects.get(step=claim.step.pk).outcome == "succeeded"


def _finish_refused(run, claim, *, seq: int) -> None:
    before = Run.objects.get(pk=run.pk)
    assert _finish(run, claim, seq=seq) is None
    after = Run.objects.get(pk=run.pk)
    assert (after.status, after.last_seq, after.unfinished_steps) == (before.status, before.last_seq,
                                                                     before.unfinished_steps)
    assert StepRun.objects.get(pk=claim.step.pk).status == "running"
    assert Attempt.objects.get(step=claim.step.pk).outcome == "running"


def test_the_last_step_statement_writes_nothing_when_the_sequence_number_moved_on():
    run, claim = _claimed_sink("finish-stale")
    with RunTx(run.pk) as tx:
        tx.event("test.note")
    _finish_refused(run, claim, seq=claim.run_seq)


def test_the_last_step_statement_writes_nothing_while_another_step_is_unfinished():
    run, claim = _claimed_sink("finish-not-last", nodes=("s1", "s2"))
    _finish_refused(run, claim, seq=claim.run_seq)


def test_the_last_step_statement_writes_nothing_when_a_step_failed():
    from django.db.models import F

    run, claim = _claimed_sink("finish-failed", nodes=("s1", "s2"))
    # s2 failed (its run stays running while s1 runs): the run must fail, which the general path works out
    StepRun.objects.filter(run=run, node_id="s2").update(status="failed")
    Run.objects.filter(pk=run.pk).update(unfinished_steps=F("unfinished_steps") - 1)
    _finish_refused(run, claim, seq=claim.run_seq)


def test_the_last_step_statement_writes_nothing_for_a_child_run():
    run, claim = _claimed_sink("finish-child")
    parent, _ = run_start(workflow=save(definition("finish-parent", [node("p")], [])))
    Run.objects.filter(pk=run.pk).update(parent_step=StepRun.objects.get(run=parent))
    _finish_refused(run, claim, seq=claim.run_seq)


def _claimed_first_step(slug: str):
    return _claimed(chain(slug, 3), "s1")


def _record(run, claim, *, seq: int):
    return hotpath.chain_step_record(run_id=run.pk, seq=seq, step_id=claim.step.pk, node_id="s1",
                                       attempt=claim.step.attempt, next_node_id="s2", output={"ok": 1},
                                       attempt_row={"logs": [], "metrics": {}}, worker="w:1")


def _unchanged(run, *, last_seq: int, s2: str):
    assert Run.objects.get(pk=run.pk).last_seq == last_seq
    assert dict(StepRun.objects.filter(run=run).values_list("node_id", "status")) == {
        "s1": "running", "s2": s2, "s3": "pending"}
    assert Attempt.objects.get(step__run=run, step__node_id="s1").outcome == "running"
    assert not Attempt.objects.filter(step__run=run, step__node_id="s2").exists()


def test_the_chained_success_returns_its_successor_and_the_runs_last_sequence_number():
    run, claim = _claimed_first_step("chain-seq")
    step, last_seq = _record(run, claim, seq=claim.run_seq)
    assert (step.node_id, step.status, step.attempt) == ("s2", "running", 1)
    assert last_seq == claim.run_seq + 3 == Run.objects.get(pk=run.pk).last_seq
    assert list(Event.objects.filter(run=run, seq__gt=claim.run_seq).values_list("seq", "type", "node_id")) == [
        (claim.run_seq + 1, "step.succeeded", "s1"), (claim.run_seq + 2, "step.queued", "s2"),
        (claim.run_seq + 3, "step.running", "s2")]


def test_the_one_statement_writes_nothing_when_the_sequence_number_moved_on():
    run, claim = _claimed_first_step("stale-seq")
    with RunTx(run.pk) as tx:
        tx.event("test.note")
    assert _record(run, claim, seq=claim.run_seq) is None
    _unchanged(run, last_seq=claim.run_seq + 1, s2="pending")


def test_the_one_statement_writes_nothing_when_the_successor_is_no_longer_pending():
    run, claim = _claimed_first_step("skipped-successor")
    step_skip(run_id=run.pk, node_id="s2")
    seq = Run.objects.get(pk=run.pk).last_seq
    assert _record(run, claim, seq=seq) is None  # the step's own compare-and-set would win: it must not apply
    assert StepRun.objects.get(run=run, node_id="s2").status == "skipped"
    assert StepRun.objects.get(run=run, node_id="s1").status == "running"
    assert Run.objects.get(pk=run.pk).last_seq == seq


def test_the_one_statement_writes_nothing_on_a_cancelled_run():
    run, claim = _claimed_first_step("cancelled")
    run_cancel(run_id=run.pk)
    seq = Run.objects.get(pk=run.pk).last_seq
    assert _record(run, claim, seq=seq) is None
    assert StepRun.objects.get(run=run, node_id="s1").status == "running"
    assert Run.objects.get(pk=run.pk).last_seq == seq


def test_the_one_statement_writes_nothing_for_a_fenced_out_attempt():
    run, claim = _claimed_first_step("fenced")
    StepRun.objects.filter(pk=claim.step.pk).update(attempt=claim.step.attempt + 1)  # recovery moved it on
    assert _record(run, claim, seq=claim.run_seq) is None
    assert StepRun.objects.get(run=run, node_id="s2").status == "pending"
    assert Run.objects.get(pk=run.pk).last_seq == claim.run_seq


def test_a_claim_for_a_run_that_moved_on_looks_again_and_claims_in_one_statement(one_statement_records):
    run, _ = run_start(workflow=save(chain("claim-moved-on", 2)))
    with RunTx(run.pk) as tx:
        tx.event("test.note")
    s1 = StepRun.objects.get(run=run, node_id="s1")
    stale = Run.objects.get(pk=run.pk).last_seq - 1
    assert hotpath.step_claim_one(run_id=run.pk, seq=stale, step_id=s1.pk, node_id="s1", attempt=s1.attempt,
                                  worker="w:1") is None
    assert StepRun.objects.get(pk=s1.pk).status == "queued" and OrmQ.objects.filter(pk=s1.broker_msg_id).exists()
    assert not Attempt.objects.filter(step=s1).exists()
    assert Run.objects.get(pk=run.pk).last_seq == stale + 1
    claim = step_claim(run_id=run.pk, step_id=s1.pk, attempt=s1.attempt, worker="w:1", node_id="s1", seq=stale)
    assert claim is not None and claim.run_seq == stale + 2 == Run.objects.get(pk=run.pk).last_seq
    assert one_statement_records == [("claim", "s1")]  # with the sequence number it read again
    assert Attempt.objects.get(step=s1).outcome == "running"
    assert not OrmQ.objects.filter(pk=s1.broker_msg_id).exists()


def test_the_claim_in_one_statement_returns_the_runs_last_sequence_number():
    run, _ = run_start(workflow=save(chain("claim-seq", 2)))
    s1 = StepRun.objects.get(run=run, node_id="s1")
    seq = Run.objects.get(pk=run.pk).last_seq
    step, version_id, inputs, durability, last_seq = hotpath.step_claim_one(
        run_id=run.pk, seq=seq, step_id=s1.pk, node_id="s1", attempt=s1.attempt, worker="w:1")
    assert (step.pk, step.status, version_id, inputs, durability) == (s1.pk, "running", run.version_id, {}, "strict")
    assert last_seq == seq + 1 == Run.objects.get(pk=run.pk).last_seq


def test_a_claim_the_one_statement_cannot_make_is_made_the_general_way(monkeypatch, one_statement_records):
    monkeypatch.setattr(hotpath, "step_claim_one", lambda **kwargs: None)  # as if the run moved on each time
    run, _ = run_start(workflow=save(chain("claim-general", 2)))
    s1 = StepRun.objects.get(run=run, node_id="s1")
    seq = Run.objects.get(pk=run.pk).last_seq
    claim = step_claim(run_id=run.pk, step_id=s1.pk, attempt=s1.attempt, worker="w:1", node_id="s1", seq=seq)
    assert claim is not None and claim.run_seq == seq + 1 == Run.objects.get(pk=run.pk).last_seq
    assert Attempt.objects.get(step=s1).outcome == "running"
    assert not OrmQ.objects.filter(pk=s1.broker_msg_id).exists()


def test_a_step_another_worker_claimed_first_is_given_up_without_locking_its_run(monkeypatch):
    from engine.worker import claim as worker_claim

    run, _ = run_start(workflow=save(chain("claim-lost", 2)))
    s1 = StepRun.objects.get(run=run, node_id="s1")
    seq = Run.objects.get(pk=run.pk).last_seq
    assert step_claim(run_id=run.pk, step_id=s1.pk, attempt=s1.attempt, worker="w:1") is not None
    locked = []
    monkeypatch.setattr(worker_claim, "RunTx", lambda *a, **kw: locked.append(a) or RunTx(*a, **kw))
    # w:2 saw s1 queued at seq (as _claim_queued does) and comes second
    assert step_claim(run_id=run.pk, step_id=s1.pk, attempt=s1.attempt, worker="w:2", node_id="s1", seq=seq) is None
    assert locked == []
    assert StepRun.objects.get(pk=s1.pk).worker == "w:1"


def test_a_delivery_for_a_cancelled_run_cancels_its_step(one_statement_records):
    run, _ = run_start(workflow=save(chain("claim-cancelled", 2)))
    s1 = StepRun.objects.get(run=run, node_id="s1")
    with RunTx(run.pk) as tx:  # the run stops while its first step's delivery is on its way
        tx.run_set_status("cancelled")
    assert step_claim(run_id=run.pk, step_id=s1.pk, attempt=s1.attempt, worker="w:1") is None
    assert one_statement_records == []
    assert StepRun.objects.get(pk=s1.pk).status == "cancelled"


def test_only_a_plain_single_successor_on_the_same_queue_is_claimed_in_one_statement():
    from engine.core.versions import version_graph

    nodes = [node("a"), node("b"), node("c"), node("d", queue="fast"), node("e"), node("f"), node("g"),
             node("h", trigger_rule="one_success")]
    edges = [("a", "b"), ("b", "c"), ("b", "e"), ("c", "d"), ("e", "f"), ("g", "f"),
             {"source": "d", "target": "h", "condition": "{{ output.ok }}"}]
    graph = version_graph(save(definition("shapes", nodes, edges)).current_version_id)
    assert hotpath.chain_successor(graph, "a", queue="default") == "b"
    assert hotpath.chain_successor(graph, "b", queue="default") is None  # two successors
    assert hotpath.chain_successor(graph, "c", queue="default") is None  # successor on another queue
    assert hotpath.chain_successor(graph, "e", queue="default") is None  # successor with two upstream steps
    assert hotpath.chain_successor(graph, "d", queue="fast") is None  # a conditional edge
    assert hotpath.chain_successor(graph, "f", queue="default") is None  # no successor


def _consistent(run) -> None:
    """What every transition keeps true: gapless events up to the run's counter, and the unfinished count."""
    run = Run.objects.get(pk=run.pk)
    seqs = list(Event.objects.filter(run=run).order_by("seq").values_list("seq", flat=True))
    assert seqs == list(range(1, run.last_seq + 1))
    unfinished = StepRun.objects.filter(run=run).exclude(status__in=STEP_TERMINAL).count()
    assert run.unfinished_steps == unfinished


def _race(run, claim, action: str, *, delay: float) -> dict:
    """The statement and ``action`` on ``run``, started together from two threads, the action ``delay``
    seconds later."""
    import threading
    import time

    from django.db import connection

    from engine.exceptions import InvalidTransition

    barrier = threading.Barrier(2, timeout=10)
    results = {}

    def record():
        barrier.wait()
        try:
            results["record"] = _record(run, claim, seq=claim.run_seq)
        finally:
            connection.close()

    def operate():
        barrier.wait()
        time.sleep(delay)
        try:
            if action == "skip the successor":
                step_skip(run_id=run.pk, node_id="s2")
            else:
                run_cancel(run_id=run.pk)
            results["operator"] = "done"
        except InvalidTransition:
            results["operator"] = "refused"
        finally:
            connection.close()

    threads = [threading.Thread(target=record), threading.Thread(target=operate)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    return results


@pytest.mark.parametrize("action", ["skip the successor", "cancel the run"])
def test_the_one_statement_racing_an_operator_keeps_the_run_consistent(action):
    """The statement and an operator's action on the same run, started together, 15 times: whichever takes
    the run's lock first wins, and the other writes nothing or is refused."""
    firsts = []
    for i in range(15):
        run, claim = _claimed_first_step(f"race-{action.split()[0]}-{i}")
        results = _race(run, claim, action, delay=i * 0.0003)  # from together to the statement well ahead
        _consistent(run)
        steps = dict(StepRun.objects.filter(run=run).values_list("node_id", "status"))
        if results["record"] is not None:  # the statement went first: the step succeeded, its successor runs
            assert steps["s1"] == "succeeded" and steps["s2"] in ("running", "cancelled")
            assert Attempt.objects.filter(step__run=run, step__node_id="s2").count() == 1
            firsts.append("statement")
        else:  # the operator went first: the statement wrote nothing
            assert steps["s1"] == "running" and results["operator"] == "done"
            assert not Attempt.objects.filter(step__run=run, step__node_id="s2").exists()
            firsts.append("operator")
    print(f"\n{action}: {firsts.count('statement')} times the statement first, {firsts.count('operator')} the operator")


# -- a run's start ----------------------------------------------------------------------------------


def started(run) -> dict:
    """Everything a run's start wrote, without what differs between two starts (ids, times)."""
    row = Run.objects.get(pk=run.pk)
    steps = list(StepRun.objects.filter(run=row).order_by("id"))
    messages = {m.pk: (m.key, SignedPackage.loads(m.payload))
                for m in OrmQ.objects.filter(pk__in=[s.broker_msg_id for s in steps])}

    def delivery(step):  # the step's broker message: its queue, and the call it makes
        if step.broker_msg_id is None:
            return None
        key, task = messages[step.broker_msg_id]
        return key, task["cluster"], task["func"], task["args"] == (str(row.pk), step.pk, step.attempt)

    return {
        "run": (row.status, row.last_seq, row.unfinished_steps, row.inputs, row.outputs, row.error,
                row.request_hash, row.parent_step_id, row.created_by_id, row.finished_at,
                row.created_at <= row.started_at),
        "returned": (run.status, run.last_seq, run.unfinished_steps, run.started_at == row.started_at,
                     run.created_at == row.created_at, run.workflow_id, run.version_id),
        "events": [(e.seq, e.type, e.node_id, e.payload, e.actor)
                   for e in Event.objects.filter(run=row).order_by("seq")],
        "steps": [(s.node_id, s.node_type, s.queue, s.status, s.attempt, s.generation, s.remaining_upstream,
                   s.upstream_succeeded, s.upstream_failed, s.upstream_skipped, s.error, s.waiting_reason, s.worker,
                   s.queued_at is not None, s.started_at, s.finished_at, s.lease_expires_at, s.output, delivery(s))
                  for s in steps],
        "messages": len(messages),
        "attempts": Attempt.objects.filter(step__run=row).count(),
    }


def test_a_run_starts_through_one_statement_with_exactly_what_the_general_path_writes(monkeypatch, django_user_model):
    user = django_user_model.objects.create_user("starter")
    wf = save(definition("start-one", [node("a"), node("b", queue="fast"), node("c"), node("d")],
                         [("a", "c"), ("b", "c"), ("c", "d")]))
    calls = []
    start_one = hotpath.run_start_one
    monkeypatch.setattr(hotpath, "run_start_one", lambda *a, **kw: calls.append(1) or start_one(*a, **kw))
    fast, created = run_start(workflow=wf, inputs={"x": [1, "two"]}, idempotency_key="k-fast", actor=user)
    assert created and calls == [1]

    monkeypatch.setattr(engine_inline, "is_inline", lambda node_type: True)  # every start the general way
    monkeypatch.setattr(scheduler, "is_inline", lambda node_type: True)
    general, _ = run_start(workflow=wf, inputs={"x": [1, "two"]}, idempotency_key="k-general", actor=user)
    assert calls == [1]

    assert Run.objects.get(pk=fast.pk).idempotency_key == "k-fast"
    assert started(fast) == started(general)
    fast_started = started(fast)
    assert fast_started["returned"] == ("running", 3, 4, True, True, wf.pk, wf.current_version_id)
    assert [s[3] for s in fast_started["steps"]] == ["queued", "queued", "pending", "pending"]
    task = "engine.worker.executor.execute_step"
    assert [s[-1] for s in fast_started["steps"]][:2] == [("default", "default", task, True),
                                                        ("fast", "fast", task, True)]
    assert fast_started["events"][0][1:] == ("run.running", "", {}, "starter")


def test_a_reused_idempotency_key_inside_a_callers_transaction_returns_the_first_run(monkeypatch):
    """Two starts with one key at once: the second's insert fails on the unique constraint and it returns the
    first run; inside a caller's transaction the failure does not abort the caller's."""
    from django.db import transaction

    wf = save(definition("start-key", [node("a")], []))
    first, _ = run_start(workflow=wf, idempotency_key="k")
    real, calls = scheduler._existing_run, []

    def existing(*args):  # the check before the insert misses the first run, as when both start at once
        calls.append(args)
        return None if len(calls) == 1 else real(*args)

    monkeypatch.setattr(scheduler, "_existing_run", existing)
    with transaction.atomic():
        again, created = run_start(workflow=wf, idempotency_key="k")
        assert Run.objects.count() == 1  # the caller's transaction still works
    assert (again.pk, created) == (first.pk, False)


def test_a_run_whose_first_step_is_inline_starts_the_general_way(monkeypatch, drain):
    calls = []
    monkeypatch.setattr(hotpath, "run_start_one", lambda *a, **kw: calls.append(1))
    wf = save(definition("start-inline", [{"id": "t", "type": "transform", "config": {"template": {"ok": True}}},
                                          node("a")], [("t", "a")]))
    run, _ = run_start(workflow=wf)
    assert calls == []
    assert StepRun.objects.get(run=run, node_id="t").status == "succeeded"
    drain()
    assert Run.objects.get(pk=run.pk).status == "succeeded"
