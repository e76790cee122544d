"""Bad input: refused at validation with the node and the reason, or failing the step at run time with the path."""

from __future__ import annotations

import json

import pytest

from engine.exceptions import GraphInvalid
from engine.integrations.credentials import credential_create
from engine.models import StepRun, Workflow
from engine.services.scheduler import run_start, step_rerun_from
from engine.services.workflows import workflow_save
from tests.conftest import definition, node

pytestmark = pytest.mark.django_db


def refused(d) -> list:
    with pytest.raises(GraphInvalid) as err:
        workflow_save(definition=d)
    assert Workflow.objects.count() == 0
    return err.value.errors


def test_config_failing_its_schema_names_the_node_and_path():
    errors = refused(definition("bad", [{"id": "call", "type": "http", "config": {"url": "https://x.test",
                                                                                  "method": "FETCH"}}], []))
    assert errors[0].node == "call" and errors[0].path == "nodes[0].config.method"


def test_template_referencing_a_node_that_is_not_upstream_is_refused():
    nodes = [node("a"), node("b"), node("c", kwargs={"x": "{{ nodes.b.output.value }}"})]
    errors = refused(definition("ref", nodes, [("a", "c"), ("a", "b")]))
    assert len(errors) == 1
    assert errors[0].node == "c" and errors[0].path == "nodes[2].config.kwargs.x"
    assert errors[0].message == ("node `c`: `kwargs.x` refers to node `b`, which is not upstream of it (no path of "
                                 "edges leads from it to this node)")


def test_template_referencing_a_missing_node_is_refused():
    errors = refused(definition("ref2", [node("a", kwargs={"x": "{{ nodes['ghost'].output }}"})], []))
    assert errors[0].node == "a" and "does not exist" in errors[0].message


def test_template_syntax_error_is_refused_with_the_path():
    d = definition("syn", [{"id": "t", "type": "transform", "config": {"template": {"v": "{{ inputs.x + }}"}}}], [])
    errors = refused(d)
    assert errors[0].node == "t" and errors[0].path == "nodes[0].config.template.v"
    assert "the template in `template.v` does not parse" in errors[0].message


def test_unknown_credential_is_refused_and_a_known_one_accepted():
    llm = {"id": "ask", "type": "llm", "config": {"prompt": "hi", "credential": "nope"}}
    errors = refused(definition("cred", [llm], []))
    assert errors[0].node == "ask" and errors[0].path == "nodes[0].config.credential"
    assert "credential `nope` does not exist" in errors[0].message
    credential_create(name="nope", kind="api_key", secret="sk-123456", allowed_hosts=["*"])
    workflow_save(definition=definition("cred", [llm], []))


def test_disallowed_host_in_an_agent_http_tool_is_refused(settings):
    settings.WEFT_HTTP_ALLOWED_HOSTS = ["api.partner.test"]
    agent = {"id": "agent", "type": "agent",
             "config": {"prompt": "go", "tools": [{"name": "t", "type": "http", "url": "https://evil.test/x"}]}}
    errors = refused(definition("host", [agent], []))
    assert errors[0].node == "agent" and errors[0].path == "nodes[0].config.tools[0].url"
    assert "evil.test" in errors[0].message
    agent["config"]["tools"][0]["url"] = "https://api.partner.test/x"
    workflow_save(definition=definition("host", [agent], []))


def test_unregistered_function_and_wrong_literal_argument_types_are_refused():
    errors = refused(definition("fn", [node("a", "nope.missing"),
                                       node("b", "nodes_tests.typed", kwargs={"n": "three", "names": []}),
                                       node("c", "nodes_tests.typed", kwargs={"names": "{{ inputs.names }}"})], []))
    by_node = {e.node: e.message for e in errors}
    assert "not registered" in by_node["a"]
    assert "argument 'n' must be int" in by_node["b"]
    assert "missing required argument(s) 'n'" in by_node["c"]


def test_every_problem_is_reported_at_once():
    nodes = [node("a", kwargs={"x": "{{ nodes.z.output }}"}),
             {"id": "t", "type": "transform", "config": {"template": "{{ oops( }}"}},
             {"id": "h", "type": "http", "config": {"url": "http://10.1.1.1/"}}]
    errors = refused(definition("many", nodes, []))
    assert {e.node for e in errors} == {"a", "t", "h"}


def test_python_arguments_are_type_checked_at_run_time(drain):
    n = node("typed", "nodes_tests.typed", kwargs={"n": "{{ inputs.n }}", "names": ["x"]}, retry={"max_attempts": 1})
    run, _ = run_start(workflow=workflow_save(definition=definition("typed", [n], []))[0], inputs={"n": "seven"})
    drain()
    step = StepRun.objects.get(run=run)
    assert step.status == "failed"
    assert "ArgumentsInvalid" in step.error and "argument 'n' must be int, got str 'seven'" in step.error


def test_template_failing_on_real_data_fails_the_step_with_the_path_and_can_be_retried_once_fixed(drain, tmp_path):
    data = tmp_path / "data.json"
    data.write_text(json.dumps({"results": []}))
    nodes = [node("fetch", "nodes_tests.read_json", kwargs={"path": str(data)}),
             {"id": "call", "type": "transform",
              "config": {"template": {"url": "{{ nodes.fetch.output.results[0].url }}"}}}]
    run, _ = run_start(workflow=workflow_save(definition=definition("tmpl", nodes, [("fetch", "call")]))[0])
    drain()
    step = StepRun.objects.get(run=run, node_id="call")
    assert step.status == "failed"
    assert "TemplateFailed" in step.error and "nodes.call.config.template.url" in step.error
    assert "list object has no element 0" in step.error
    data.write_text(json.dumps({"results": [{"url": "https://example.org/a"}]}))  # the upstream is fixed
    step_rerun_from(run_id=run.pk, node_id="fetch", actor="operator")
    drain()
    run.refresh_from_db()
    assert run.status == "succeeded"
    assert StepRun.objects.get(run=run, node_id="call").output == {"url": "https://example.org/a"}


def test_runs_of_a_saved_version_do_not_repeat_save_time_checks(settings, drain):
    """Deleting a credential (or changing the host policy) after saving fails the step that needs it,
    not every transaction of the run."""
    from engine.core import versions
    from engine.integrations.credentials import credential_delete

    credential_create(name="gone", kind="api_key", secret="sk-123456", allowed_hosts=["*"])
    ask = {"id": "ask", "type": "llm", "retry": {"max_attempts": 1}, "config": {"prompt": "hi", "credential": "gone"}}
    wf = workflow_save(definition=definition("later", [ask, node("other")], []))[0]
    credential_delete(name="gone")
    versions._GRAPHS.clear()  # as in a fresh worker process
    run, _ = run_start(workflow=wf)
    drain()
    run.refresh_from_db()
    steps = {s.node_id: s for s in StepRun.objects.filter(run=run)}
    assert steps["other"].status == "succeeded"
    assert steps["ask"].status == "failed" and "credential 'gone' does not exist" in steps["ask"].error
