"""Testing one node from the editor over HTTP: POST /api/workflows/<slug>/nodes/test/ runs its real code with
sample inputs and records nothing; GET reads the sample from the workflow's last run."""

from __future__ import annotations

import time

import pytest

from engine.models import Attempt, Event, JournalEntry, Run, StepRun
from engine.services.scheduler import run_start
from engine.services.workflows import workflow_save
from tests.api.test_workflows import assert_error
from tests.conftest import definition, node
from tests.fakes.servers import ToolServer

pytestmark = pytest.mark.django_db

URL = "/api/workflows/tw/nodes/test/"


@pytest.fixture
def workflow():
    return workflow_save(definition=definition(
        "tw", [node("up", "tests.add", kwargs={"a": 1, "b": 2}), node("t", "tests.add")], [("up", "t")],
        inputs={"type": "object", "properties": {"x": {"type": "integer"}}}))[0]


@pytest.fixture
def tool_server():
    server = ToolServer().start()
    yield server
    server.stop()


def nothing_recorded() -> bool:
    return not any(m.objects.exists() for m in (Run, StepRun, Attempt, JournalEntry, Event))


def test_a_node_runs_with_the_sample_inputs_and_upstream_outputs_and_nothing_is_recorded(api, workflow):
    body = {"node": node("t", "tests.add", kwargs={"a": "{{ inputs.x }}", "b": "{{ nodes.up.output.sum }}"}),
            "context": {"inputs": {"x": 40}, "nodes": {"up": {"output": {"sum": 2}}}}}
    r = api("designer").post(URL, body, format="json")
    assert r.status_code == 200, r.content
    result = r.json()
    assert (result["ok"], result["output"], result["error"], result["waits"]) == (True, {"sum": 42}, None, None)
    assert result["node_id"] == "t" and result["duration_ms"] >= 0
    assert nothing_recorded()


def test_a_failing_node_answers_its_error_type_and_message(api, workflow):
    body = {"node": node("t", "tests.raise", kwargs={"message": "the {{ inputs.thing }} broke"}),
            "context": {"inputs": {"thing": "printer"}}}
    r = api("designer").post(URL, body, format="json")
    assert r.status_code == 200, r.content
    result = r.json()
    assert result["ok"] is False and result["output"] is None
    assert result["error"] == {"type": "RuntimeError", "message": "the printer broke"}
    assert nothing_recorded()


def test_a_config_that_would_not_save_is_400_worded_for_people(api, workflow):
    r = api("designer").post(URL, {"node": {"id": "t", "type": "python", "config": {"kwargs": {}}}}, format="json")
    err = assert_error(r, 400, "graph_invalid")
    messages = [d["message"] for d in err["details"]]
    assert "node `t`: `function` is required" in messages, messages
    assert all(d["path"].startswith("nodes[0]") for d in err["details"])
    r = api("designer").post(URL, {"node": node("t", "tests.nope")}, format="json")
    err = assert_error(r, 400, "graph_invalid")
    assert "function 'tests.nope' is not registered" in err["details"][0]["message"]
    r = api("designer").post(URL, {"node": {"id": "t", "type": "teleport", "config": {}}}, format="json")
    assert "`teleport` is not a known node type" in assert_error(r, 400, "graph_invalid")["details"][0]["message"]
    r = api("designer").post(URL, {"node": node("t"), "context": {"nodes": {"up": "not an object"}}}, format="json")
    assert_error(r, 400, "invalid")
    assert nothing_recorded()


@pytest.mark.parametrize("kind", ["approval", "sleep", "subworkflow", "wait_for_event"])
def test_a_node_that_waits_inside_a_run_cannot_be_tested_and_says_why(api, workflow, kind):
    config = {"approval": {}, "sleep": {"seconds": 1}, "subworkflow": {"workflow": "tw"},
              "wait_for_event": {"event": "paid"}}[kind]
    r = api("designer").post(URL, {"node": {"id": "t", "type": kind, "config": config}}, format="json")
    err = assert_error(r, 400, "not_testable")
    assert err["message"].startswith("node `t` cannot be tested on its own: ") and "start a run" in err["message"]
    assert nothing_recorded()


def test_only_a_designer_may_test_a_node_or_read_its_sample(api, workflow):
    body = {"node": node("t", "tests.add")}
    for kind in ("viewer", "operator"):
        assert_error(api(kind).post(URL, body, format="json"), 403, "permission_denied")
        assert_error(api(kind).get(URL + "?node=t"), 403, "permission_denied")
    assert api("anonymous").post(URL, body, format="json").status_code in (401, 403)
    assert_error(api("designer").post("/api/workflows/nope/nodes/test/", body, format="json"), 404, "not_found")


def test_an_http_node_reaches_a_loopback_server_only_where_the_ssrf_guard_allows(api, workflow, tool_server,
                                                                                settings):
    literal = {"node": {"id": "t", "type": "http", "config": {"url": tool_server.url + "/echo"}}}
    body = {"node": {"id": "t", "type": "http", "config": {"url": "{{ inputs.base }}/echo",
                                                          "headers": {"X-Topic": "{{ inputs.topic }}"}}},
            "context": {"inputs": {"topic": "tides", "base": tool_server.url}}}
    settings.WEFT_HTTP_ALLOWED_HOSTS = ["*"]  # public hosts only
    err = assert_error(api("designer").post(URL, literal, format="json"), 400, "graph_invalid")  # as a save says
    assert "is a loopback address, which WEFT_HTTP_ALLOWED_HOSTS does not allow" in err["details"][0]["message"]
    r = api("designer").post(URL, body, format="json")  # a templated URL is checked when the request is sent
    assert r.status_code == 200, r.content
    assert r.json()["ok"] is False and "loopback" in r.json()["error"]["message"], r.json()
    assert tool_server.requests == []

    settings.WEFT_HTTP_ALLOWED_HOSTS = ["*", "127.0.0.1"]
    r = api("designer").post(URL, body, format="json")
    result = r.json()
    assert result["ok"] is True, result
    assert result["output"]["status"] == 200 and result["output"]["body"]["headers"]["x-topic"] == "tides"
    sent_key = tool_server.requests[-1]["headers"]["idempotency-key"]
    assert [(c["key"], c["status"]) for c in result["calls"]] == [("request", "succeeded")]
    api("designer").post(URL, body, format="json")
    assert tool_server.requests[-1]["headers"]["idempotency-key"] != sent_key  # a test never replays another
    assert nothing_recorded()


def test_a_node_that_runs_past_the_time_cap_answers_a_timeout(api, workflow, settings):
    settings.WEFT_NODE_TEST_TIMEOUT_S = 0.5
    started = time.monotonic()
    r = api("designer").post(URL, {"node": node("t", "tests.sleep", kwargs={"seconds": 3})}, format="json")
    assert time.monotonic() - started < 2.5
    assert r.json()["error"] == {"type": "StepTimeout", "message": "the node did not finish within 0.5 s"}


def test_a_mapped_node_is_tested_on_the_first_item_of_its_list(api, workflow):
    body = {"node": {**node("t", "tests.add", kwargs={"a": "{{ item }}", "b": "{{ item_index }}"}),
                     "for_each": "{{ nodes.up.output.items }}"},
            "context": {"nodes": {"up": {"output": {"items": [7, 8]}}}}}
    assert api("designer").post(URL, body, format="json").json()["output"] == {"sum": 7}


def test_the_sample_is_the_last_runs_inputs_and_upstream_outputs(api, workflow, drain):
    r = api("designer").get(URL + "?node=t")
    assert r.json() == {"context": {}, "run_id": None, "version": None}
    run, _ = run_start(workflow=workflow, inputs={"x": 5})
    drain()
    r = api("designer").get(URL + "?node=t&upstream=up")
    assert r.status_code == 200, r.content
    assert r.json() == {"context": {"inputs": {"x": 5}, "nodes": {"up": {"output": {"sum": 3}, "status": "succeeded"}}},
                        "run_id": str(run.pk), "version": 1}
    assert_error(api("designer").get(URL + "?node=t&upstream=a,,b"), 400, "invalid")


def test_the_editors_definition_compared_with_a_version_field_by_field(api, workflow):
    d = workflow.current_version.definition
    edited = {**d, "priority": 3, "nodes": [d["nodes"][0], {**d["nodes"][1], "config": {
        "function": "tests.add", "kwargs": {"a": 5}}}], "edges": []}
    r = api("viewer").post("/api/workflows/tw/versions/1/compare/", {"definition": edited}, format="json")
    assert r.status_code == 200, r.content
    assert r.json() == {
        "version": 1,
        "workflow": [{"field": "priority", "before": None, "after": 3}],
        "nodes": [{"node_id": "t", "change": "changed",
                   "fields": [{"field": "config.kwargs.a", "before": None, "after": 5}]}],
        "edges": [{"edge": "up->t", "change": "removed", "fields": []}],
    }
    assert_error(api("viewer").post("/api/workflows/tw/versions/9/compare/", {"definition": edited},
                                     format="json"), 404, "not_found")
