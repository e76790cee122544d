"""Retry and rerun on the workflow's current version: the run moves to the fixed version when its graph
has the same nodes and edges, and is refused with the reason (and left as it was) when not."""

from __future__ import annotations

import pytest

from engine.core.definition_diff import definition_changes
from engine.exceptions import InvalidTransition
from engine.models import Event, Run, StepRun
from engine.services.run_versions import run_version_compare
from engine.services.scheduler import run_retry_failed, run_start, step_rerun_from, step_retry
from engine.services.workflows import workflow_save
from tests.conftest import definition, node

pytestmark = pytest.mark.django_db(transaction=True)


def broken_then_fixed(slug="fix"):
    def make(b):
        return definition(slug, [node("a"), b, node("c")], [("a", "b"), ("b", "c")])

    v1 = make(node("b", "tests.raise", kwargs={"message": "bad template"}, retry={"max_attempts": 1}))
    v2 = make(node("b", "tests.noop", retry={"max_attempts": 1}))
    return v1, v2


def statuses(run) -> dict:
    return dict(StepRun.objects.filter(run=run).values_list("node_id", "status"))


def test_retry_on_the_current_version_runs_the_fix_and_moves_the_run(drain):
    v1, v2 = broken_then_fixed()
    wf = workflow_save(definition=v1)[0]
    run, _ = run_start(workflow=wf)
    drain()
    assert statuses(run)["b"] == "failed"
    workflow_save(definition=v2)
    compare = run_version_compare(run_id=run.pk)
    assert (compare["run_version"], compare["current_version"], compare["movable"]) == (1, 2, True)
    assert compare["changes"] == [{"node_id": "b", "change": "changed", "fields": [
        {"field": "config.function", "before": "tests.raise", "after": "tests.noop"},
        {"field": "config.kwargs.message", "before": "bad template", "after": None}]}]

    step_retry(run_id=run.pk, node_id="b")  # the run's version: the broken v1 again
    drain()
    run.refresh_from_db()
    assert run.status == "failed" and run.version.number == 1

    step_retry(run_id=run.pk, node_id="b", version="current", actor="alice")
    drain()
    run.refresh_from_db()
    assert run.status == "succeeded"
    assert run.version.number == 2
    assert set(statuses(run).values()) == {"succeeded"}
    moved = Event.objects.get(run=run, type="run.version_changed")
    assert (moved.payload, moved.actor) == ({"from_version": 1, "to_version": 2}, "alice")


def test_moving_is_refused_with_the_reason_when_the_nodes_differ_and_nothing_changes(drain):
    v1, _ = broken_then_fixed("fix-refused")
    run, _ = run_start(workflow=workflow_save(definition=v1)[0])
    drain()
    v3 = definition("fix-refused", [node("a"), node("b2"), node("c")], [("a", "b2"), ("b2", "c")])
    workflow_save(definition=v3)
    compare = run_version_compare(run_id=run.pk)
    assert not compare["movable"]
    assert compare["problems"] == ["v2 has no node `b`", "v2 adds node `b2`", "v2 changes the edges into `c`"]
    seq = Run.objects.get(pk=run.pk).last_seq
    with pytest.raises(InvalidTransition, match=r"cannot retry 'b' on the current version \(v2\): v2 has no node `b`"):
        step_retry(run_id=run.pk, node_id="b", version="current")
    run.refresh_from_db()
    assert (run.version.number, run.status, run.last_seq) == (1, "failed", seq)
    assert statuses(run)["b"] == "failed"
    with pytest.raises(InvalidTransition, match="version must be one of run, current"):
        step_retry(run_id=run.pk, node_id="b", version="latest")


def test_rerun_from_a_step_on_the_current_version(drain, tmp_path):
    d1 = definition("rerun-fix", [node("a"), node("b", "tests.add", kwargs={"a": 1, "b": 1})], [("a", "b")])
    run, _ = run_start(workflow=workflow_save(definition=d1)[0])
    drain()
    assert StepRun.objects.get(run=run, node_id="b").output == {"sum": 2}
    d2 = definition("rerun-fix", [node("a"), node("b", "tests.add", kwargs={"a": 40, "b": 2})], [("a", "b")])
    workflow_save(definition=d2)
    assert step_rerun_from(run_id=run.pk, node_id="b", version="current") == ["b"]
    drain()
    run.refresh_from_db()
    assert run.status == "succeeded" and run.version.number == 2
    assert StepRun.objects.get(run=run, node_id="b").output == {"sum": 42}


def test_definition_changes_name_added_removed_and_changed_fields():
    before = {"nodes": [{"id": "a", "type": "http", "config": {"url": "x"}, "position": {"x": 1}}, {"id": "gone"}]}
    after = {"nodes": [{"id": "a", "type": "http", "config": {"url": "y"}, "position": {"x": 9}},
                       {"id": "new", "type": "noop"}]}
    assert definition_changes(before, after) == [
        {"node_id": "a", "change": "changed", "fields": [{"field": "config.url", "before": "x", "after": "y"}]},
        {"node_id": "gone", "change": "removed", "fields": []},
        {"node_id": "new", "change": "added", "fields": [{"field": "type", "before": None, "after": "noop"}]},
    ]


def test_retry_failed_steps_retries_every_failed_step_in_one_action(drain, tmp_path):
    flag = tmp_path / "flag"
    d = definition("retry-all", [
        node("a"),
        node("x", "tests.fail_until_flag", kwargs={"flag": str(flag)}, retry={"max_attempts": 1}),
        node("y", "tests.fail_until_flag", kwargs={"flag": str(flag)}, retry={"max_attempts": 1}),
        node("after_x"), node("after_y"),
    ], [("a", "x"), ("a", "y"), ("x", "after_x"), ("y", "after_y")])
    run, _ = run_start(workflow=workflow_save(definition=d)[0])
    drain()
    assert statuses(run) == {"a": "succeeded", "x": "failed", "y": "failed", "after_x": "upstream_failed",
                             "after_y": "upstream_failed"}
    flag.write_text("fixed")
    assert run_retry_failed(run_id=run.pk, actor="bob") == ["x", "y"]
    assert Event.objects.filter(run=run, type="step.retry_requested", actor="bob").count() == 2
    drain()
    run.refresh_from_db()
    assert run.status == "succeeded" and set(statuses(run).values()) == {"succeeded"}
    with pytest.raises(InvalidTransition, match="no failed step"):
        run_retry_failed(run_id=run.pk)
