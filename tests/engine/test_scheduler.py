"""Scheduler and executor on the real database, with steps executed in-process by the real executor."""

from __future__ import annotations

import pytest

from engine.exceptions import GraphInvalid, IdempotencyConflict, InputsInvalid, InvalidTransition
from engine.models import Attempt, Event, JournalEntry, Run, StepRun, Workflow
from engine.services.scheduler import (
    run_cancel,
    run_start,
    step_approve,
    step_complete,
    step_rerun_from,
    step_retry,
    step_skip,
)
from engine.services.workflows import workflow_save
from tests.conftest import chain, definition, node

pytestmark = pytest.mark.django_db(transaction=True)

NO_BACKOFF = {"max_attempts": 1}


def save(d):
    return workflow_save(definition=d)[0]


def statuses(run) -> dict:
    return dict(StepRun.objects.filter(run=run).values_list("node_id", "status"))


def assert_gapless(run):
    seqs = list(Event.objects.filter(run=run).order_by("seq").values_list("seq", flat=True))
    assert seqs == list(range(1, len(seqs) + 1))
    assert Run.objects.get(pk=run.pk).last_seq == len(seqs)


def test_chain_runs_in_order_and_succeeds(drain, tmp_path):
    log = tmp_path / "log"
    wf = save(chain("c5", 5, lambda i: node(f"s{i}", "tests.count", kwargs={"path": str(log)})))
    run, created = run_start(workflow=wf, inputs={})
    assert created and statuses(run)["s1"] == "queued" and statuses(run)["s2"] == "pending"
    drain()
    run.refresh_from_db()
    assert run.status == "succeeded"
    assert log.read_text().split() == ["s1", "s2", "s3", "s4", "s5"]
    assert run.outputs == {"s5": {"node": "s5"}}
    assert run.unfinished_steps == 0
    assert_gapless(run)


def test_templates_pass_upstream_outputs_and_inputs(drain):
    d = definition(
        "tmpl",
        [node("a", "tests.add", kwargs={"a": "{{ inputs.x }}", "b": 2}),
         node("b", "tests.add", kwargs={"a": "{{ nodes.a.output.sum }}", "b": "{{ inputs.x * 10 }}"})],
        [("a", "b")],
        inputs={"type": "object", "required": ["x"], "properties": {"x": {"type": "integer"}}},
    )
    run, _ = run_start(workflow=save(d), inputs={"x": 3})
    drain()
    run.refresh_from_db()
    assert run.status == "succeeded", statuses(run)
    assert run.outputs == {"b": {"sum": 35}}


def test_inputs_failing_schema_are_refused_and_nothing_is_created():
    d = definition("inp", [node("a")], [], inputs={"type": "object", "required": ["x"]})
    wf = save(d)
    with pytest.raises(InputsInvalid) as err:
        run_start(workflow=wf, inputs={})
    assert "x" in err.value.message
    assert Run.objects.count() == 0


def test_invalid_definition_saves_nothing():
    d = definition("bad", [node("a"), node("a"), {"id": "c", "type": "nope"}], [("a", "zz")])
    with pytest.raises(GraphInvalid) as err:
        workflow_save(definition=d)
    codes = {e.code for e in err.value.errors}
    assert {"duplicate_node", "unknown_node_type"} <= codes
    assert Workflow.objects.count() == 0


def test_fan_out_and_join(drain):
    nodes = [node("root")] + [node(f"m{i}") for i in range(20)] + [node("join")]
    edges = [("root", f"m{i}") for i in range(20)] + [(f"m{i}", "join") for i in range(20)]
    run, _ = run_start(workflow=save(definition("fan", nodes, edges)))
    drain()
    run.refresh_from_db()
    assert run.status == "succeeded"
    assert set(statuses(run).values()) == {"succeeded"}
    assert Attempt.objects.filter(step__run=run).count() == 22


def test_failure_blocks_descendants_then_retry_finishes_and_keeps_upstream(drain, tmp_path):
    flag, log = tmp_path / "flag", tmp_path / "log"

    def make(i):
        if i == 3:
            return node("s3", "tests.fail_until_flag", kwargs={"flag": str(flag)}, retry=NO_BACKOFF)
        return node(f"s{i}", "tests.count", kwargs={"path": str(log)})

    run, _ = run_start(workflow=save(chain("retry", 6, make)))
    drain()
    run.refresh_from_db()
    st = statuses(run)
    assert run.status == "failed"
    assert st["s3"] == "failed" and [st[f"s{i}"] for i in (4, 5, 6)] == ["upstream_failed"] * 3
    assert run.error == "step(s) failed: s3; blocked by a failure (upstream failed): s4, s5, s6"
    with pytest.raises(InvalidTransition, match="succeeded"):
        step_retry(run_id=run.pk, node_id="s1")
    flag.write_text("ok")
    step_retry(run_id=run.pk, node_id="s3", actor="alice")
    assert Run.objects.get(pk=run.pk).status == "running"
    drain()
    run.refresh_from_db()
    assert run.status == "succeeded"
    assert log.read_text().split() == ["s1", "s2", "s4", "s5", "s6"]
    assert list(Attempt.objects.filter(step__run=run, step__node_id="s3").values_list("number", "outcome")) == [
        (1, "failed"), (2, "succeeded")]
    assert Event.objects.filter(run=run, type="step.retry_requested", actor="alice").count() == 1
    assert_gapless(run)


def test_automatic_retries_follow_the_policy(drain, tmp_path):
    flag = tmp_path / "flag"
    d = definition("auto", [node("a", "tests.fail_until_flag", kwargs={"flag": str(flag)},
                                 retry={"max_attempts": 3, "backoff_s": 0})], [])
    run, _ = run_start(workflow=save(d))
    drain()
    run.refresh_from_db()
    assert run.status == "failed"
    assert Attempt.objects.filter(step__run=run).count() == 3


def test_retry_on_limits_which_errors_retry(drain):
    d = definition("retry-on", [node("a", "tests.raise", kwargs={"kind": "ValueError"},
                                     retry={"max_attempts": 5, "backoff_s": 0, "retry_on": ["KeyError"]})], [])
    run, _ = run_start(workflow=save(d))
    drain()
    assert Attempt.objects.filter(step__run=run).count() == 1
    assert "ValueError" in StepRun.objects.get(run=run).error


def test_journal_replays_finished_substeps_on_retry(drain, tmp_path):
    flag, log = tmp_path / "flag", tmp_path / "log"
    d = definition("journal", [node("a", "tests.journal_steps",
                                    kwargs={"path": str(log), "n": 5, "fail_at": 3, "flag": str(flag)},
                                    retry=NO_BACKOFF)], [])
    run, _ = run_start(workflow=save(d))
    drain()
    assert log.read_text().split() == ["0", "1", "2", "3"]
    flag.write_text("ok")
    step_retry(run_id=run.pk, node_id="a")
    drain()
    run.refresh_from_db()
    assert run.status == "succeeded"
    # sub-steps 0-2 replayed from the journal; 3 re-ran; 4 ran once
    assert log.read_text().split() == ["0", "1", "2", "3", "3", "4"]
    assert run.outputs == {"a": {"values": [0, 10, 20, 30, 40]}}


def test_non_deterministic_replay_fails_with_clear_error(drain, tmp_path):
    d = definition("nondet", [node("a", "tests.changing_keys", kwargs={"path": str(tmp_path / "x")},
                                   retry={"max_attempts": 2, "backoff_s": 0})], [])
    run, _ = run_start(workflow=save(d))
    drain()
    step = StepRun.objects.get(run=run)
    assert step.status == "failed"
    assert "non-deterministic replay" in step.error and "key-1" in step.error


def test_condition_and_branch_skip_excluded_paths(drain):
    nodes = [node("a", "tests.add", kwargs={"a": 1, "b": 1}), node("yes"), node("no"), node("after_no")]
    edges = [{"source": "a", "target": "yes", "condition": "output.sum == 2"},
             {"source": "a", "target": "no", "condition": "output.sum > 2"}, ("no", "after_no")]
    run, _ = run_start(workflow=save(definition("cond", nodes, edges)))
    drain()
    run.refresh_from_db()
    assert statuses(run) == {"a": "succeeded", "yes": "succeeded", "no": "skipped", "after_no": "skipped"}
    assert run.status == "succeeded"


def test_trigger_rules_all_done_and_one_success(drain):
    nodes = [node("ok"), node("bad", "tests.raise", retry=NO_BACKOFF),
             node("cleanup", trigger_rule="all_done"), node("any", trigger_rule="one_success"),
             node("strict")]
    edges = [("ok", "cleanup"), ("bad", "cleanup"), ("ok", "any"), ("bad", "any"), ("ok", "strict"), ("bad", "strict")]
    run, _ = run_start(workflow=save(definition("rules", nodes, edges)))
    drain()
    run.refresh_from_db()
    st = statuses(run)
    assert st["cleanup"] == "succeeded" and st["any"] == "succeeded" and st["strict"] == "upstream_failed"
    assert run.status == "failed"


def test_idempotency_key_returns_same_run_and_conflicts_on_other_inputs():
    wf = save(definition("idem", [node("a")], []))
    r1, c1 = run_start(workflow=wf, inputs={"x": 1}, idempotency_key="k1")
    r2, c2 = run_start(workflow=wf, inputs={"x": 1}, idempotency_key="k1")
    assert (c1, c2) == (True, False) and r1.pk == r2.pk
    with pytest.raises(IdempotencyConflict):
        run_start(workflow=wf, inputs={"x": 2}, idempotency_key="k1")
    assert Run.objects.count() == 1


def test_cancel_stops_pending_steps(drain):
    run, _ = run_start(workflow=save(chain("cancel", 3)))
    run_cancel(run_id=run.pk, actor="bob")
    drain()
    run.refresh_from_db()
    assert run.status == "cancelled"
    assert set(statuses(run).values()) == {"cancelled"}
    with pytest.raises(InvalidTransition, match="cancelled"):
        run_cancel(run_id=run.pk)


def test_skip_and_complete_a_failed_step_let_the_run_finish(drain):
    d = definition("skip", [node("a", "tests.raise", retry=NO_BACKOFF), node("b", trigger_rule="all_done"),
                            node("c", "tests.raise", retry=NO_BACKOFF), node("d")], [("a", "b"), ("c", "d")])
    run, _ = run_start(workflow=save(d))
    drain()
    assert Run.objects.get(pk=run.pk).status == "failed"
    step_skip(run_id=run.pk, node_id="a")
    step_complete(run_id=run.pk, node_id="c", output={"manual": 1})
    drain()
    run.refresh_from_db()
    st = statuses(run)
    assert st == {"a": "skipped", "b": "succeeded", "c": "succeeded", "d": "succeeded"}
    assert run.status == "succeeded"
    assert StepRun.objects.get(run=run, node_id="c").output == {"manual": 1}


def test_rerun_from_reruns_step_and_descendants_only(drain, tmp_path):
    log = tmp_path / "log"
    run, _ = run_start(workflow=save(chain("rerun", 4, lambda i: node(f"s{i}", "tests.count",
                                                                       kwargs={"path": str(log)}))))
    drain()
    step_rerun_from(run_id=run.pk, node_id="s3")
    drain()
    run.refresh_from_db()
    assert run.status == "succeeded"
    assert log.read_text().split() == ["s1", "s2", "s3", "s4", "s3", "s4"]
    assert StepRun.objects.get(run=run, node_id="s3").generation == 1


def test_wrong_state_actions_are_refused_and_change_nothing(drain):
    run, _ = run_start(workflow=save(chain("wrong", 2)))
    before = Run.objects.get(pk=run.pk).last_seq
    with pytest.raises(InvalidTransition, match="not waiting for approval"):
        step_approve(run_id=run.pk, node_id="s1")
    with pytest.raises(InvalidTransition, match="queued"):
        step_retry(run_id=run.pk, node_id="s1")
    assert Run.objects.get(pk=run.pk).last_seq == before


def test_duplicate_delivery_executes_once(drain, tmp_path):
    from django_q.models import OrmQ
    from django_q.signing import SignedPackage

    from engine.worker.executor import execute_step

    log = tmp_path / "log"
    run, _ = run_start(workflow=save(definition("dup", [node("a", "tests.count", kwargs={"path": str(log)})], [])))
    args = SignedPackage.loads(OrmQ.objects.get().payload)["args"]
    assert execute_step(*args) == "succeeded"
    assert execute_step(*args) == "not claimed"
    assert log.read_text().split() == ["a"]


def test_output_too_large_is_refused_with_clear_error(drain, settings):
    settings.WEFT_MAX_OUTPUT_BYTES = 1024
    d = definition("big", [node("a", "tests.noop", kwargs={"blob": "x" * 5000}, retry=NO_BACKOFF)], [])
    run, _ = run_start(workflow=save(d))
    drain()
    step = StepRun.objects.get(run=run)
    assert step.status == "failed" and "WEFT_MAX_OUTPUT_BYTES" in step.error


def test_journal_entries_are_recorded(drain, tmp_path):
    d = definition("jr", [node("a", "tests.journal_steps", kwargs={"path": str(tmp_path / "l"), "n": 2})], [])
    run, _ = run_start(workflow=save(d))
    drain()
    entries = list(JournalEntry.objects.filter(step__run=run).values_list("key", "status", "result"))
    assert entries == [("sub-0", "succeeded", 0), ("sub-1", "succeeded", 10)]


def test_step_timeout_fails_the_attempt_and_retries(drain):
    d = definition("timeout", [node("a", "tests.sleep", kwargs={"seconds": 5}, timeout_s=0.5,
                                    retry={"max_attempts": 2, "backoff_s": 0})], [])
    run, _ = run_start(workflow=save(d))
    drain()
    attempts = list(Attempt.objects.filter(step__run=run).order_by("number").values_list("outcome", "error"))
    assert [a[0] for a in attempts] == ["timeout", "timeout"]
    assert "timeout of 0.5 s" in attempts[0][1]
    assert Run.objects.get(pk=run.pk).status == "failed"


def test_node_logs_and_prints_are_captured_per_attempt(drain, settings):
    settings.WEFT_MAX_LOG_LINES = 5
    d = definition("logs", [node("a", "tests.chatty", kwargs={"lines": 8})], [])
    run, _ = run_start(workflow=save(d))
    drain()
    logs = Attempt.objects.get(step__run=run).logs
    assert [entry["msg"] for entry in logs[:2]] == ["printed 0", "logged 0"]
    assert len(logs) == 6 and "dropped" in logs[-1]["msg"] and "WEFT_MAX_LOG_LINES" in logs[-1]["msg"]


def test_inline_nodes_run_in_the_transaction_that_makes_them_ready(drain):
    when_big = "{{ nodes.shape.output.total > 5 }}"
    d = definition("inline", [
        node("a", "tests.add", kwargs={"a": 2, "b": 3}),
        {"id": "shape", "type": "transform", "config": {"template": {"total": "{{ nodes.a.output.sum * 2 }}"}}},
        {"id": "pick", "type": "branch", "config": {"cases": [{"branch": "big", "when": when_big}],
                                                    "default": "small"}},
        node("big_path"), node("small_path"),
    ], [("a", "shape"), ("shape", "pick"), {"source": "pick", "target": "big_path", "branch": "big"},
        {"source": "pick", "target": "small_path", "branch": "small"}])
    run, _ = run_start(workflow=save(d))
    drain()
    run.refresh_from_db()
    assert run.status == "succeeded"
    st = statuses(run)
    assert st == {"a": "succeeded", "shape": "succeeded", "pick": "succeeded", "big_path": "succeeded",
                  "small_path": "skipped"}
    shape = StepRun.objects.get(run=run, node_id="shape")
    assert shape.output == {"total": 10} and shape.worker == "inline"
    # never queued: "a" succeeding, shape and pick finishing, big_path being queued share one transaction
    events = list(Event.objects.filter(run=run).order_by("seq").values_list("type", "node_id"))
    assert ("step.queued", "shape") not in events and ("step.queued", "pick") not in events
    i = events.index(("step.succeeded", "a"))
    assert events[i + 1:i + 3] == [("step.succeeded", "shape"), ("step.succeeded", "pick")]
    assert set(events[i + 3:i + 5]) == {("step.skipped", "small_path"), ("step.queued", "big_path")}
    assert_gapless(run)


def test_inline_node_failure_fails_the_step_with_the_template_error(drain):
    d = definition("inline-bad", [node("a"), {"id": "t", "type": "transform",
                                              "config": {"template": "{{ nodes.a.output.missing.deeper }}"}}],
                   [("a", "t")])
    run, _ = run_start(workflow=save(d))
    drain()
    step = StepRun.objects.get(run=run, node_id="t")
    assert step.status == "failed" and "nodes.t.config" in step.error
    assert Run.objects.get(pk=run.pk).status == "failed"


def test_completing_a_step_costs_the_same_in_a_small_and_a_large_workflow(drain, settings):
    """Readiness is incremental: finishing a step of a chain issues as many statements whether the run has
    20 or 2,000 steps (cost proportional to the step's out-degree, never to the number of nodes)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext
    from django_q.models import OrmQ

    settings.WEFT_CONTINUE_MAX_S = 0  # one step per delivery
    per_step = {}
    for n in (20, 2000):
        run, _ = run_start(workflow=save(chain(f"cost-{n}", n)))
        with CaptureQueriesContext(connection) as queries:
            _drain_some(10)
        done = StepRun.objects.filter(run=run, status="succeeded").count()
        assert 10 <= done < 20
        per_step[n] = len(queries) / done
        run_cancel(run_id=run.pk)
        OrmQ.objects.all().delete()  # the cancelled step's message, which would claim nothing
    print(f"\nstatements per completed step: {per_step}")
    assert per_step[2000] <= per_step[20]


def _drain_some(deliveries: int) -> None:
    from django_q.models import OrmQ
    from django_q.signing import SignedPackage

    from engine.worker.executor import execute_step

    for _ in range(deliveries):
        row = OrmQ.objects.order_by("id").first()
        OrmQ.objects.filter(pk=row.pk).delete()
        execute_step(*SignedPackage.loads(row.payload)["args"])


def test_a_backoff_is_a_durable_retry_wait_that_holds_no_worker(drain, tmp_path):
    from datetime import timedelta

    from django.db.models.functions import Now
    from django.utils import timezone
    from django_q.models import OrmQ

    from engine.worker.recovery import recover_once

    flag = tmp_path / "flag"
    d = definition("backoff", [node("a", "tests.fail_until_flag", kwargs={"flag": str(flag)},
                                    retry={"max_attempts": 2, "backoff_s": 30, "jitter": 0})], [])
    run, _ = run_start(workflow=save(d))
    before = timezone.now()
    drain(recover=False)
    step = StepRun.objects.get(run=run)
    assert step.status == "retry_wait" and step.attempt == 1
    assert timedelta(seconds=25) < step.next_attempt_at - before < timedelta(seconds=35)
    assert not OrmQ.objects.exists(), "a step waiting out its backoff must not sit in the broker"
    assert recover_once() == 0 and StepRun.objects.get(pk=step.pk).status == "retry_wait"
    flag.write_text("ok")
    StepRun.objects.filter(pk=step.pk).update(next_attempt_at=Now() - timedelta(seconds=1))  # time passes
    assert recover_once() == 1
    assert StepRun.objects.get(pk=step.pk).status == "queued"
    drain(recover=False)
    run.refresh_from_db()
    assert run.status == "succeeded"
    assert list(Attempt.objects.filter(step=step).order_by("number").values_list("outcome", flat=True)) == [
        "failed", "succeeded"]


def test_one_delivery_runs_a_whole_fan_out_in_batches_each_step_once(tmp_path):
    from django_q.models import OrmQ
    from django_q.signing import SignedPackage

    from engine.worker.executor import execute_step

    log = tmp_path / "log"
    width = 40
    nodes = [node("root"), *[node(f"m{i}", "tests.count", kwargs={"path": str(log)}) for i in range(width)],
             node("join")]
    edges = [("root", f"m{i}") for i in range(width)] + [(f"m{i}", "join") for i in range(width)]
    run, _ = run_start(workflow=save(definition("fan-batch", nodes, edges)))
    args = SignedPackage.loads(OrmQ.objects.get().payload)["args"]
    assert execute_step(*args) == "succeeded"
    run.refresh_from_db()
    assert run.status == "succeeded", statuses(run)
    assert sorted(log.read_text().split()) == sorted(f"m{i}" for i in range(width))
    # every step ran exactly one attempt, and the claimed siblings' broker rows are gone
    assert set(Attempt.objects.filter(step__run=run).values_list("number", flat=True)) == {1}
    assert Attempt.objects.filter(step__run=run, outcome="succeeded").count() == width + 2
    assert not OrmQ.objects.exists()
    assert_gapless(run)
    running = Event.objects.filter(run=run, type="step.running")
    assert running.count() == width + 2


def test_a_worker_done_with_its_run_claims_the_oldest_queued_step_of_another_run(tmp_path):
    from django_q.models import OrmQ
    from django_q.signing import SignedPackage

    from engine.worker.executor import execute_step

    log = tmp_path / "log"
    wf = save(chain("c2-other", 2, lambda i: node(f"s{i}", "tests.count", kwargs={"path": str(log)})))
    first, _ = run_start(workflow=wf)
    second, _ = run_start(workflow=wf)
    other = definition("other-queue", [node("f", "tests.count", kwargs={"path": str(log)}, queue="fast")], [])
    elsewhere, _ = run_start(workflow=save(other))
    rows = {SignedPackage.loads(r.payload)["args"][0]: r for r in OrmQ.objects.all()}
    # one delivery: its own run, then the other queued run of its queue, without that run's delivery
    assert execute_step(*SignedPackage.loads(rows[str(first.pk)].payload)["args"]) == "succeeded"
    for run in (first, second):
        run.refresh_from_db()
        assert run.status == "succeeded", statuses(run)
        assert_gapless(run)
        assert set(Attempt.objects.filter(step__run=run).values_list("number", flat=True)) == {1}
    assert log.read_text().split() == ["s1", "s2", "s1", "s2"]
    assert not OrmQ.objects.filter(pk=rows[str(second.pk)].pk).exists(), "the claim drops the broker message"
    # a step of another queue is left to that queue's workers
    assert statuses(elsewhere) == {"f": "queued"}
    assert OrmQ.objects.filter(pk=rows[str(elsewhere.pk)].pk).exists()


def test_claimed_steps_not_started_within_the_window_go_back_to_the_queue(settings, tmp_path):
    from django_q.models import OrmQ
    from django_q.signing import SignedPackage

    from engine.worker.executor import execute_step

    settings.WEFT_CONTINUE_WINDOW_S = 0.0  # every claimed step after the first in a batch is handed back
    log = tmp_path / "log"
    nodes = [node("root"), *[node(f"m{i}", "tests.count", kwargs={"path": str(log)}) for i in range(6)]]
    run, _ = run_start(workflow=save(definition("fan-release", nodes, [("root", f"m{i}") for i in range(6)])))
    args = SignedPackage.loads(OrmQ.objects.get().payload)["args"]
    assert execute_step(*args) == "succeeded"
    released = list(Event.objects.filter(run=run, type="step.queued", payload__released=True))
    assert len(released) == 1
    # the handed-back step is queued again with the same attempt number and a broker row, and never ran here
    step = StepRun.objects.get(run=run, node_id=released[0].node_id)
    assert step.status == "queued" and step.attempt == released[0].payload["attempt"] == 1
    assert OrmQ.objects.filter(pk=step.broker_msg_id).exists()
    assert not Attempt.objects.filter(step=step).exists()
    assert step.node_id not in log.read_text().split()
    while OrmQ.objects.exists():
        row = OrmQ.objects.order_by("id").first()
        OrmQ.objects.filter(pk=row.pk).delete()
        execute_step(*SignedPackage.loads(row.payload)["args"])
    run.refresh_from_db()
    assert run.status == "succeeded", statuses(run)
    assert sorted(log.read_text().split()) == sorted(f"m{i}" for i in range(6))
    assert_gapless(run)
