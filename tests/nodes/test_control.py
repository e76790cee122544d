"""branch and transform nodes, run by the real executor (on a queue: they are declared inline-capable)."""

from __future__ import annotations

import pytest

from engine.core.registry import get_node_type
from engine.exceptions import GraphInvalid
from engine.models import StepRun
from engine.services.scheduler import run_start
from engine.services.workflows import workflow_save
from tests.conftest import definition, node

pytestmark = pytest.mark.django_db


def statuses(run) -> dict:
    return dict(StepRun.objects.filter(run=run).values_list("node_id", "status"))


def outputs(run) -> dict:
    return dict(StepRun.objects.filter(run=run).values_list("node_id", "output"))


def triage(mode="first", default="normal") -> dict:
    cases = [{"branch": "urgent", "when": "{{ inputs.priority > 7 }}"},
             {"branch": "billing", "when": "{{ 'refund' in inputs.text }}"}]
    nodes = [{"id": "route", "type": "branch", "config": {"cases": cases, "default": default, "mode": mode}},
             node("page_oncall"), node("after_page"), node("refund"), node("reply")]
    edges = [{"source": "route", "target": "page_oncall", "branch": "urgent"},
             {"source": "page_oncall", "target": "after_page"},
             {"source": "route", "target": "refund", "branch": "billing"},
             {"source": "route", "target": "reply", "branch": "normal"}]
    return definition(f"triage-{mode}", nodes, edges)


def run_with(d, inputs, drain):
    run, _ = run_start(workflow=workflow_save(definition=d)[0], inputs=inputs)
    drain()
    run.refresh_from_db()
    return run


def test_branch_runs_only_the_chosen_edge_and_skips_the_rest_of_the_subtrees(drain):
    run = run_with(triage(), {"priority": 9, "text": "refund please"}, drain)
    assert run.status == "succeeded"
    assert outputs(run)["route"] == {"branch": "urgent"}
    assert statuses(run) == {"route": "succeeded", "page_oncall": "succeeded", "after_page": "succeeded",
                             "refund": "skipped", "reply": "skipped"}


def test_branch_falls_back_to_its_default(drain):
    run = run_with(triage(), {"priority": 1, "text": "hello"}, drain)
    assert statuses(run) == {"route": "succeeded", "page_oncall": "skipped", "after_page": "skipped",
                             "refund": "skipped", "reply": "succeeded"}


def test_branch_mode_all_chooses_every_true_case(drain):
    run = run_with(triage(mode="all"), {"priority": 9, "text": "refund please"}, drain)
    assert outputs(run)["route"] == {"branches": ["urgent", "billing"]}
    assert statuses(run)["page_oncall"] == statuses(run)["refund"] == "succeeded"
    assert statuses(run)["reply"] == "skipped"


def test_branch_edge_label_no_case_chooses_is_refused_at_validation():
    d = triage()
    d["edges"][3]["branch"] = "nrmal"
    with pytest.raises(GraphInvalid) as err:
        workflow_save(definition=d)
    assert err.value.errors[0].node == "route" and "'nrmal'" in err.value.errors[0].message


def test_branch_condition_without_template_braces_is_refused():
    d = triage()
    d["nodes"][0]["config"]["cases"][0]["when"] = "inputs.priority > 7"
    with pytest.raises(GraphInvalid) as err:
        workflow_save(definition=d)
    assert err.value.errors[0].path == "nodes[0].config.cases[0].when"


def test_transform_template_builds_native_json_from_inputs_and_upstream(drain):
    nodes = [node("a", "tests.add", kwargs={"a": 2, "b": 3}),
             {"id": "shape", "type": "transform",
              "config": {"template": {"total": "{{ nodes.a.output.sum * 10 }}", "who": "{{ inputs.name }}",
                                      "label": "sum={{ nodes.a.output.sum }}", "tags": ["x", "{{ inputs.name }}"],
                                      "fixed": 7}}}]
    run = run_with(definition("shape", nodes, [("a", "shape")]), {"name": "Ada"}, drain)
    assert outputs(run)["shape"] == {"total": 50, "who": "Ada", "label": "sum=5", "tags": ["x", "Ada"], "fixed": 7}


def test_transform_jmespath_queries_inputs_and_upstream(drain):
    nodes = [node("a", "tests.noop", kwargs={"items": [{"n": 1, "ok": True}, {"n": 2, "ok": False}]}),
             {"id": "pick", "type": "transform",
              "config": {"jmespath": "{ok: upstream.a.items[?ok].n, who: inputs.name}"}}]
    run = run_with(definition("pick", nodes, [("a", "pick")]), {"name": "Ada"}, drain)
    assert outputs(run)["pick"] == {"ok": [1], "who": "Ada"}


def test_invalid_jmespath_is_refused_at_validation():
    d = definition("badjp", [{"id": "pick", "type": "transform", "config": {"jmespath": "a[?"}}], [])
    with pytest.raises(GraphInvalid) as err:
        workflow_save(definition=d)
    assert err.value.errors[0].path == "nodes[0].config.jmespath"


def test_control_nodes_are_declared_inline():
    assert get_node_type("transform").inline and get_node_type("branch").inline
