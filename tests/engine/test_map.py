"""Map (a node's for_each): items as steps of their own, output in item order, max_parallel, item failures,
and operator actions on one item or on all failed items; steps executed in-process by the real executor."""

from __future__ import annotations

import pytest
from django.test import override_settings

from engine.exceptions import GraphInvalid, InvalidTransition
from engine.models import Attempt, Run, StepRun
from engine.services.scheduler import run_start, step_complete, step_retry, step_skip
from engine.services.workflows import workflow_save
from tests.conftest import definition, node

pytestmark = pytest.mark.django_db(transaction=True)

LIST_INPUT = {"type": "object", "properties": {"xs": {}}}


def save(d):
    return workflow_save(definition=d)[0]


def mapped(slug: str, *, item_node: dict | None = None, after: bool = True, **map_fields) -> dict:
    """source -> each (for_each over the source's output) -> after."""
    each = item_node or node("each", "tests.add", kwargs={"a": "{{ item }}", "b": "{{ item_index }}"})
    each = {**each, "for_each": "{{ nodes.source.output.xs }}", **map_fields}
    nodes = [node("source", kwargs={"xs": "{{ inputs.xs }}"}), each]
    edges = [("source", "each")]
    if after:
        nodes.append(node("after", "tests.add", kwargs={"a": "{{ nodes.each.output | length }}"}))
        edges.append(("each", "after"))
    return definition(slug, nodes, edges, inputs=LIST_INPUT)


def items(run) -> list[tuple[str, str, int]]:
    return list(StepRun.objects.filter(run=run, map_parent__isnull=False).order_by("map_index")
                .values_list("node_id", "status", "attempt"))


def test_map_output_is_the_item_outputs_in_item_order(drain):
    run, _ = run_start(workflow=save(mapped("m-order")), inputs={"xs": [10, 20, 30, 40]})
    drain()
    run.refresh_from_db()
    assert run.status == "succeeded", run.error
    each = StepRun.objects.get(run=run, node_id="each")
    assert each.status == "succeeded"
    assert each.output == [{"sum": 10}, {"sum": 21}, {"sum": 32}, {"sum": 43}]
    assert each.waiting_detail == {"items": 4, "failed": []}
    assert run.outputs == {"after": {"sum": 4}}
    assert [(n, s) for n, s, _ in items(run)] == [(f"each[{i}]", "succeeded") for i in range(4)]
    assert Attempt.objects.filter(step__run=run, step__map_parent__isnull=False, outcome="succeeded").count() == 4
    assert run.unfinished_steps == 0


def test_empty_list_gives_an_empty_output_and_successors_run(drain):
    run, _ = run_start(workflow=save(mapped("m-empty")), inputs={"xs": []})
    drain()
    run.refresh_from_db()
    assert run.status == "succeeded"
    assert StepRun.objects.get(run=run, node_id="each").output == []
    assert run.outputs == {"after": {"sum": 0}}
    assert items(run) == []


@pytest.mark.parametrize("xs, message", [
    ({"a": 1}, "for_each must yield a JSON list; it yielded an object"),
    ("abc", "for_each must yield a JSON list; it yielded a string"),
    (list(range(6)), "for_each yielded 6 items; at most 5 are allowed (WEFT_MAX_MAP_ITEMS)"),
])
def test_a_non_list_or_too_many_items_fails_the_node_with_the_reason(drain, xs, message):
    with override_settings(WEFT_MAX_MAP_ITEMS=5):
        run, _ = run_start(workflow=save(mapped("m-bad")), inputs={"xs": xs})
        drain()
    run.refresh_from_db()
    each = StepRun.objects.get(run=run, node_id="each")
    assert run.status == "failed"
    assert each.status == "failed" and message in each.error and "'each'" in each.error
    assert StepRun.objects.get(run=run, node_id="after").status == "upstream_failed"
    assert items(run) == []  # nothing half-started


def most_items_at_once(run) -> int:
    """The most items queued, running or waiting to retry at once, replayed from the run's events."""
    status, most = {}, 0
    for node_id, kind in run.events.filter(node_id__contains="[").order_by("seq").values_list("node_id", "type"):
        status[node_id] = kind.removeprefix("step.")
        most = max(most, sum(s in ("queued", "running", "retry_wait") for s in status.values()))
    return most


def test_max_parallel_queues_only_that_many_items_at_once(drain):
    run, _ = run_start(workflow=save(mapped("m-par", max_parallel=2)), inputs={"xs": [1, 2, 3, 4, 5, 6, 7]})
    drain()
    run.refresh_from_db()
    assert run.status == "succeeded"
    assert most_items_at_once(run) == 2
    assert [e.node_id for e in run.events.filter(type="step.queued", node_id__startswith="each[")
            .order_by("seq")] == [f"each[{i}]" for i in range(7)]


def _failing_at(indices) -> dict:
    return node("each", "tests.fail_at", kwargs={"item": "{{ item }}", "fail": list(indices)},
                retry={"max_attempts": 1})


def test_on_item_failure_fail_fails_the_node_once_every_item_finished_naming_them(drain):
    wf = save(mapped("m-fail", item_node=_failing_at([1, 3])))
    run, _ = run_start(workflow=wf, inputs={"xs": [0, 1, 2, 3, 4]})
    drain()
    run.refresh_from_db()
    each = StepRun.objects.get(run=run, node_id="each")
    assert [s for _, s, _ in items(run)] == ["succeeded", "failed", "succeeded", "failed", "succeeded"]
    assert each.status == "failed"
    assert each.error.startswith("2 of 5 map item(s) failed: each[1], each[3]; the first: RuntimeError: item 1")
    assert each.waiting_detail == {"items": 5, "failed": [1, 3]}
    assert run.status == "failed" and "each" in run.error and "each[" not in run.error


def test_on_item_failure_continue_gives_null_for_failed_items_and_says_which(drain):
    wf = save(mapped("m-cont", item_node=_failing_at([1]), on_item_failure="continue"))
    run, _ = run_start(workflow=wf, inputs={"xs": [0, 1, 2]})
    drain()
    run.refresh_from_db()
    each = StepRun.objects.get(run=run, node_id="each")
    assert run.status == "succeeded", run.error
    assert each.output == [{"item": 0}, None, {"item": 2}]
    assert each.waiting_detail == {"items": 3, "failed": [1]}
    assert run.outputs == {"after": {"sum": 3}}


def test_retry_of_the_node_retries_its_failed_items_only(drain, tmp_path):
    flag = tmp_path / "flag"
    each = node("each", "tests.fail_until_flag_at", kwargs={"flag": str(flag), "item": "{{ item }}", "fail": [1, 2]},
                retry={"max_attempts": 1})
    run, _ = run_start(workflow=save(mapped("m-retry", item_node=each, max_parallel=1)), inputs={"xs": [0, 1, 2, 3]})
    drain()
    assert Run.objects.get(pk=run.pk).status == "failed"
    flag.write_text("")
    step_retry(run_id=run.pk, node_id="each")
    assert StepRun.objects.get(run=run, node_id="each").status == "waiting"
    assert [s for _, s, _ in items(run)] == ["succeeded", "queued", "pending", "succeeded"]  # max_parallel 1
    drain()
    run.refresh_from_db()
    assert run.status == "succeeded", run.error
    assert [(s, a) for _, s, a in items(run)] == [("succeeded", 1), ("succeeded", 2), ("succeeded", 2),
                                                  ("succeeded", 1)]
    assert StepRun.objects.get(run=run, node_id="each").output == [{"item": i} for i in range(4)]


def test_retry_skip_and_complete_one_item(drain, tmp_path):
    flag = tmp_path / "flag"
    each = node("each", "tests.fail_until_flag_at", kwargs={"flag": str(flag), "item": "{{ item }}",
                                                           "fail": [0, 1, 2]}, retry={"max_attempts": 1})
    run, _ = run_start(workflow=save(mapped("m-one", item_node=each)), inputs={"xs": [0, 1, 2, 3]})
    drain()
    assert Run.objects.get(pk=run.pk).status == "failed"
    flag.write_text("")
    step_retry(run_id=run.pk, node_id="each[0]")
    drain()
    assert StepRun.objects.get(run=run, node_id="each").status == "failed"  # each[1] and each[2] still failed
    step_skip(run_id=run.pk, node_id="each[1]")
    each = StepRun.objects.get(run=run, node_id="each")  # every item finished again, each[2] still failed
    assert each.status == "failed" and each.error.startswith("1 of 4 map item(s) failed: each[2];")
    step_complete(run_id=run.pk, node_id="each[2]", output={"item": "by hand"})
    drain()
    run.refresh_from_db()
    assert run.status == "succeeded", run.error
    assert StepRun.objects.get(run=run, node_id="each").output == [{"item": 0}, None, {"item": "by hand"},
                                                                   {"item": 3}]
    with pytest.raises(InvalidTransition):
        step_retry(run_id=run.pk, node_id="each[3]")


@pytest.mark.parametrize("fields, path, message", [
    ({"for_each": 3}, "nodes[1].for_each", "`for_each` must be a string"),
    ({"for_each": "{{ nodes.source.output.xs }}", "max_parallel": 0}, "nodes[1].max_parallel",
     "`max_parallel` must be at least 1"),
    ({"for_each": "{{ nodes.source.output.xs }}", "on_item_failure": "ignore"}, "nodes[1].on_item_failure",
     "`on_item_failure` must be one of `fail`, `continue`"),
    ({"for_each": "no template"}, "nodes[1].for_each", "`for_each` must be a template that yields a list"),
    ({"for_each": "{{ nodes.later.output }}"}, "nodes[1].for_each",
     "`for_each` refers to node `later`, which does not exist"),
    ({"max_parallel": 2}, "nodes[1].max_parallel", "applies to a mapped node only"),
])
def test_bad_map_fields_are_refused_at_validation_naming_node_and_field(fields, path, message):
    d = definition("m-invalid", [node("source"), {**node("each"), **fields}], [("source", "each")])
    with pytest.raises(GraphInvalid) as info:
        workflow_save(definition=d)
    issues = [i for i in info.value.errors if i.path == path]
    assert issues and issues[0].message.startswith("node `each`: "), info.value.errors
    assert message in issues[0].message, info.value.errors
