"""Workflows over HTTP: create, list, get, update, archive, versions, validate, export, schema."""

from __future__ import annotations

import pytest

from engine.core.graph import DEFINITION_SCHEMA
from engine.models import Run, Workflow, WorkflowVersion
from engine.services.scheduler import run_start
from engine.services.workflows import workflow_save
from tests.api.conftest import simple_definition
from tests.conftest import definition, node

pytestmark = pytest.mark.django_db


def assert_error(response, status: int, code: str):
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "details"}
    assert body["error"]["code"] == code, body
    assert isinstance(body["error"]["details"], list)
    return body["error"]


def test_create_workflow_returns_201_and_saves_version_one(designer):
    r = designer.post("/api/workflows/", {"definition": simple_definition("alpha"), "note": "first"}, format="json")
    assert r.status_code == 201, r.content
    body = r.json()
    assert body["slug"] == "alpha" and body["new_version"] is True
    assert body["current_version"]["number"] == 1 and body["current_version"]["note"] == "first"
    assert body["current_version"]["created_by"] == "u-designer"
    assert body["run_counts"] == {"pending": 0, "running": 0, "succeeded": 0, "failed": 0, "cancelled": 0}
    assert body["last_run"] is None
    assert WorkflowVersion.objects.get(workflow__slug="alpha").definition == simple_definition("alpha")


def test_create_invalid_definition_reports_every_error_and_saves_nothing(designer):
    bad = definition("bad", [node("a"), node("a"), {"id": "c", "type": "nope"}], [("a", "zz")])
    r = designer.post("/api/workflows/", {"definition": bad}, format="json")
    err = assert_error(r, 400, "graph_invalid")
    codes = {d["code"] for d in err["details"]}
    assert {"duplicate_node", "unknown_node_type"} <= codes
    assert any(d.get("node") == "c" for d in err["details"])
    assert any(d.get("edge") == "a->zz" for d in err["details"])
    assert Workflow.objects.count() == 0


def test_create_without_definition_is_400_naming_the_field(designer):
    r = designer.post("/api/workflows/", {"note": "x"}, format="json")
    err = assert_error(r, 400, "invalid")
    assert err["details"][0]["path"] == "definition"


def test_create_existing_slug_is_409_and_adds_no_version(designer):
    workflow_save(definition=simple_definition("dup"))
    changed = definition("dup", [node("only")], [])
    r = designer.post("/api/workflows/", {"definition": changed}, format="json")
    assert_error(r, 409, "conflict")
    assert WorkflowVersion.objects.filter(workflow__slug="dup").count() == 1


def test_list_searches_and_paginates(api):
    for slug in ("billing-sync", "billing-report", "crawler"):
        workflow_save(definition=simple_definition(slug))
    client = api("viewer")
    r = client.get("/api/workflows/", {"q": "billing"})
    assert r.status_code == 200
    assert [w["slug"] for w in r.json()["results"]] == ["billing-report", "billing-sync"]
    page = client.get("/api/workflows/", {"page_size": 2}).json()
    assert page["count"] == 3 and len(page["results"]) == 2 and page["next"]
    second = client.get(page["next"]).json()
    assert [w["slug"] for w in second["results"]] == ["crawler"]


def test_list_shows_run_totals_and_last_run_status(api):
    wf, _, _ = workflow_save(definition=simple_definition("counted"))
    run_start(workflow=wf, inputs={})
    item = api("viewer").get("/api/workflows/").json()["results"][0]
    assert item["runs_total"] == 1 and item["last_run_status"] == "running" and item["version"] == 1


def test_archived_workflows_are_listed_only_when_asked(api):
    workflow_save(definition=simple_definition("live"))
    workflow_save(definition=simple_definition("old"))
    api("designer").delete("/api/workflows/old/")
    viewer = api("viewer")
    assert [w["slug"] for w in viewer.get("/api/workflows/").json()["results"]] == ["live"]
    listed = viewer.get("/api/workflows/", {"archived": "true"}).json()["results"]
    assert {w["slug"]: w["archived"] for w in listed} == {"live": False, "old": True}


def test_get_shows_current_version_run_counts_and_last_run(api):
    wf, _, _ = workflow_save(definition=simple_definition("shown"))
    first, _ = run_start(workflow=wf, inputs={})
    last, _ = run_start(workflow=wf, inputs={})
    body = api("viewer").get("/api/workflows/shown/").json()
    assert body["current_version"]["definition"] == simple_definition("shown")
    assert body["run_counts"]["running"] == 2
    assert body["last_run"]["id"] == str(last.pk) and body["last_run"]["status"] == "running"


def test_update_makes_a_new_version_and_an_identical_one_does_not(designer):
    workflow_save(definition=simple_definition("upd"))
    changed = definition("upd", [node("a"), node("b"), node("c")], [("a", "b"), ("b", "c")])
    r = designer.put("/api/workflows/upd/", {"definition": changed, "note": "add c"}, format="json")
    assert r.status_code == 200, r.content
    assert r.json()["new_version"] is True and r.json()["current_version"]["number"] == 2
    again = designer.put("/api/workflows/upd/", {"definition": changed}, format="json").json()
    assert again["new_version"] is False and again["current_version"]["number"] == 2
    assert WorkflowVersion.objects.filter(workflow__slug="upd").count() == 2


def test_update_refuses_a_definition_with_another_slug(designer):
    workflow_save(definition=simple_definition("mine"))
    r = designer.put("/api/workflows/mine/", {"definition": simple_definition("other")}, format="json")
    err = assert_error(r, 400, "invalid")
    assert err["details"][0]["path"] == "definition.slug"
    assert not Workflow.objects.filter(slug="other").exists()


def test_update_with_invalid_definition_keeps_the_current_version(designer):
    workflow_save(definition=simple_definition("keep"))
    bad = definition("keep", [node("a")], [("a", "missing")])
    assert_error(designer.put("/api/workflows/keep/", {"definition": bad}, format="json"), 400, "graph_invalid")
    assert Workflow.objects.get(slug="keep").current_version.number == 1


def test_post_to_versions_adds_a_version(designer):
    workflow_save(definition=simple_definition("vpost"))
    changed = definition("vpost", [node("x")], [])
    r = designer.post("/api/workflows/vpost/versions/", {"definition": changed}, format="json")
    assert r.status_code == 201 and r.json()["current_version"]["number"] == 2
    same = designer.post("/api/workflows/vpost/versions/", {"definition": changed}, format="json")
    assert same.status_code == 200 and same.json()["new_version"] is False


def test_archive_keeps_runs_and_their_version_and_refuses_new_runs(api):
    wf, v1, _ = workflow_save(definition=simple_definition("arch"))
    run, _ = run_start(workflow=wf, inputs={})
    r = api("designer").delete("/api/workflows/arch/")
    assert r.status_code == 204
    assert Workflow.objects.get(slug="arch").archived is True
    assert Run.objects.get(pk=run.pk).version_id == v1.pk
    start = api("operator").post("/api/workflows/arch/runs/", {}, format="json")
    err = assert_error(start, 409, "invalid_state")
    assert "archived" in err["message"]


def test_versions_list_newest_first_and_get_one(api):
    workflow_save(definition=simple_definition("vers"))
    workflow_save(definition=definition("vers", [node("z")], []), note="second")
    client = api("viewer")
    listed = client.get("/api/workflows/vers/versions/").json()
    assert [v["number"] for v in listed] == [2, 1] and listed[0]["note"] == "second"
    one = client.get("/api/workflows/vers/versions/1/").json()
    assert one["definition"] == simple_definition("vers")
    assert_error(client.get("/api/workflows/vers/versions/9/"), 404, "not_found")


def test_validate_returns_every_error_with_node_and_edge_ids_and_saves_nothing(api):
    bad = definition("val", [node("a"), {"id": "b", "type": "nope"}], [("a", "ghost"), ("a", "b")])
    r = api("viewer").post("/api/workflows/validate/", {"definition": bad}, format="json")
    assert r.status_code == 200
    body = r.json()
    assert body["valid"] is False and body["warnings"] == []
    assert any(e.get("node") == "b" and e["code"] == "unknown_node_type" for e in body["errors"])
    assert any(e.get("edge") == "a->ghost" for e in body["errors"])
    assert Workflow.objects.count() == 0


def test_validate_reports_config_errors_for_people_and_config_checks_beside_graph_errors(api):
    """Every error at once: the template and limit checks run though an edge names no node; JSON-Schema errors
    read as sentences about the field, the path kept."""
    bad = definition("val3", [node("a", kwargs={"x": "{{ nodes.ghost.output }}"}, limits=[{"name": "no-such"}]),
                              {"id": "fetch", "type": "http", "config": {"timeout_s": "3", "foo": 1}}],
                     [("a", "nowhere"), ("a", "fetch")])
    body = api("viewer").post("/api/workflows/validate/", {"definition": bad}, format="json").json()
    got = {(e["code"], e.get("path"), e["message"]) for e in body["errors"]}
    assert ("unknown_edge_node", "edges[0].target", "edge a->nowhere: target `nowhere` is not a node id") in got
    assert ("config_invalid", "nodes[1].config", "node `fetch`: `url` is required") in got
    assert ("config_invalid", "nodes[1].config", "node `fetch`: `foo` is not a known field") in got
    assert ("config_invalid", "nodes[1].config.timeout_s", "node `fetch`: `timeout_s` must be a number") in got
    codes = [e["code"] for e in body["errors"]]
    assert "template_reference" in codes and "unknown_limit" in codes, body["errors"]


def test_validate_accepts_a_valid_definition_and_reports_warnings(api):
    disconnected = definition("val2", [node("a"), node("b"), node("c")], [("a", "b")])
    body = api("viewer").post("/api/workflows/validate/", {"definition": disconnected}, format="json").json()
    assert body["valid"] is True and body["errors"] == []
    assert [w["code"] for w in body["warnings"]] == ["disconnected"]
    assert body["warnings"][0]["node"] == "c"


def test_validate_of_a_non_object_is_invalid_not_an_error(api):
    body = api("viewer").post("/api/workflows/validate/", {"definition": [1, 2]}, format="json").json()
    assert body["valid"] is False and body["errors"]


def test_export_returns_the_definition_of_current_or_given_version(api):
    workflow_save(definition=simple_definition("exp"))
    v2 = definition("exp", [node("only")], [])
    workflow_save(definition=v2)
    client = api("viewer")
    r = client.get("/api/workflows/exp/export/")
    assert r.status_code == 200 and r.json() == v2
    assert 'filename="exp.json"' in r["Content-Disposition"]
    assert client.get("/api/workflows/exp/export/", {"version": 1}).json() == simple_definition("exp")
    assert_error(client.get("/api/workflows/exp/export/", {"version": 7}), 404, "not_found")


def test_workflow_schema_is_the_definition_json_schema(api):
    assert api("viewer").get("/api/workflow-schema/").json() == DEFINITION_SCHEMA


def test_unknown_slug_is_404_everywhere(api):
    client = api("designer")
    assert_error(client.get("/api/workflows/nope/"), 404, "not_found")
    assert_error(client.get("/api/workflows/nope/versions/"), 404, "not_found")
    assert_error(client.get("/api/workflows/nope/export/"), 404, "not_found")
    assert_error(client.delete("/api/workflows/nope/"), 404, "not_found")
    assert_error(client.put("/api/workflows/nope/", {"definition": simple_definition("nope")}, format="json"),
                 404, "not_found")
    assert not Workflow.objects.filter(slug="nope").exists()
    assert_error(client.post("/api/workflows/nope/runs/", {}, format="json"), 404, "not_found")
