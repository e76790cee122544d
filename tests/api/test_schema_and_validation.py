"""The OpenAPI schema and the request validation say the same thing: what the schema declares for query
parameters and bodies is what the API enforces (400 naming the parameter), and what the API refuses the
schema declares."""

from __future__ import annotations

import pytest
from jsonschema import Draft202012Validator

from engine.core.graph import DEFINITION_SCHEMA
from engine.services.workflows import workflow_save
from tests.api.conftest import simple_definition
from tests.api.test_workflows import assert_error

pytestmark = pytest.mark.django_db

LISTS = ["/api/runs/", "/api/workflows/"]


@pytest.fixture
def schema(api):
    return api("viewer").get("/api/schema/", {"format": "json"}).json()


def query_parameter(schema, path: str, name: str) -> dict:
    parameters = schema["paths"][path]["get"]["parameters"]
    return next(p["schema"] for p in parameters if p["name"] == name and p["in"] == "query")


def request_schema(schema, path: str, method: str) -> dict:
    ref = schema["paths"][path][method]["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    return schema["components"]["schemas"][ref.rsplit("/", 1)[1]]


@pytest.mark.parametrize("path", LISTS)
def test_page_size_bounds_are_declared(schema, path):
    declared = query_parameter(schema, path, "page_size")
    assert (declared["type"], declared["minimum"], declared["maximum"]) == ("integer", 1, 200)


@pytest.mark.parametrize("path", LISTS)
@pytest.mark.parametrize("value", ["", "null", "-1", "0", "abc", "1.5", "201"])
def test_page_size_out_of_its_declared_bounds_is_400_naming_it(api, path, value):
    error = assert_error(api("viewer").get(path, {"page_size": value}), 400, "invalid")
    assert "page_size" in error["message"]
    assert [d["path"] for d in error["details"]] == ["page_size"]


@pytest.mark.parametrize("path", LISTS)
def test_page_size_within_bounds_pages(api, path):
    for slug in ("p1", "p2", "p3"):
        workflow_save(definition=simple_definition(slug))
    r = api("viewer").get(path, {"page_size": 200})
    assert r.status_code == 200, r.content


@pytest.mark.parametrize("value", ["0", "-3", "last", "x"])
def test_workflow_page_that_is_not_a_positive_number_is_400_naming_it(api, value):
    error = assert_error(api("viewer").get("/api/workflows/", {"page": value}), 400, "invalid")
    assert [d["path"] for d in error["details"]] == ["page"]


def test_page_is_declared_a_positive_integer(schema):
    assert query_parameter(schema, "/api/workflows/", "page")["minimum"] == 1


def test_definition_is_declared_required_an_object_and_the_definition_schema(schema):
    for path, method in [("/api/workflows/", "post"), ("/api/workflows/{slug}/", "put"),
                         ("/api/workflows/{slug}/versions/", "post")]:
        body = request_schema(schema, path, method)
        assert "definition" in body["required"]
        assert body["properties"]["definition"]["allOf"] == [{"$ref": "#/components/schemas/WorkflowDefinition"}]
    component = schema["components"]["schemas"]["WorkflowDefinition"]
    assert component["type"] == "object" and component["required"] == DEFINITION_SCHEMA["required"]
    assert component["properties"].keys() == DEFINITION_SCHEMA["properties"].keys()
    assert component["additionalProperties"] is False


@pytest.mark.parametrize("path", ["/api/workflows/", "/api/workflows/validate/"])
def test_a_null_definition_is_refused_and_the_schema_says_so(api, schema, path):
    assert_error(api("designer").post(path, {"definition": None}, format="json"), 400, "invalid")
    declared = request_schema(schema, path, "post")["properties"]["definition"]
    if "allOf" in declared:
        declared = schema["components"]["schemas"]["WorkflowDefinition"]
    assert declared["type"] == "object" or "null" not in declared["type"]


def test_the_definition_schema_is_still_served_as_it_is(api):
    assert api("viewer").get("/api/workflow-schema/").json() == DEFINITION_SCHEMA


def test_nul_in_a_query_string_is_400_and_every_request_string_declares_it(api, schema):
    assert_error(api("viewer").get("/api/workflows/", {"q": "a\x00b"}), 400, "invalid")
    assert_error(api("designer").post("/api/workflows/", {"definition": simple_definition("n\x00"), "note": ""},
                                      format="json"), 400, "malformed_request")
    pattern = query_parameter(schema, "/api/workflows/", "q")["pattern"]
    note = request_schema(schema, "/api/workflows/", "post")["properties"]["note"]["pattern"]
    name = schema["components"]["schemas"]["WorkflowDefinition"]["properties"]["name"]["pattern"]
    assert pattern == note == name == r"^[^\u0000]*$"
    assert "lone UTF-16 surrogate" in schema["info"]["description"]


def test_a_blank_idempotency_key_is_refused_and_the_schema_says_so(api, schema):
    workflow_save(definition=simple_definition("idem"))
    r = api("operator").post("/api/workflows/idem/runs/", {}, format="json", HTTP_IDEMPOTENCY_KEY="   ")
    assert_error(r, 400, "invalid")
    header = next(p for p in schema["paths"]["/api/workflows/{slug}/runs/"]["post"]["parameters"]
                  if p["name"] == "Idempotency-Key")
    assert header["schema"]["pattern"] == r"\S"


def test_the_log_level_may_be_blank_as_the_schema_says(api, schema, mixed_run):
    assert "" in query_parameter(schema, "/api/runs/{run_id}/logs/", "level")["enum"]
    assert "minLength" not in query_parameter(schema, "/api/runs/{run_id}/logs/", "level")
    assert api("viewer").get(f"/api/runs/{mixed_run.pk}/logs/", {"level": ""}).status_code == 200


def test_start_run_links_to_get_run(schema):
    links = schema["paths"]["/api/workflows/{slug}/runs/"]["post"]["responses"]["201"]["links"]
    assert links["run_get"] == {"operationId": "run_get", "parameters": {"run_id": "$response.body#/id"}}
    created = schema["paths"]["/api/workflows/"]["post"]["responses"]["201"]["links"]
    assert created["run_start"]["parameters"] == {"slug": "$response.body#/slug"}


def test_blank_filters_mean_every_run_and_step_as_the_schema_allows(api, schema, mixed_run):
    assert "minLength" not in query_parameter(schema, "/api/runs/", "workflow")
    assert "" in query_parameter(schema, "/api/runs/", "status")["enum"]
    node = Draft202012Validator(query_parameter(schema, "/api/runs/{run_id}/logs/", "node"))
    assert node.is_valid("") and node.is_valid("ask") and not node.is_valid(" ")
    viewer = api("viewer")
    for blank in ({"workflow": ""}, {"status": ""}):
        assert [r["id"] for r in viewer.get("/api/runs/", blank).json()["results"]] == [str(mixed_run.pk)]
    everything = viewer.get(f"/api/runs/{mixed_run.pk}/logs/").json()["lines"]
    assert viewer.get(f"/api/runs/{mixed_run.pk}/logs/", {"node": ""}).json()["lines"] == everything
    assert_error(viewer.get(f"/api/runs/{mixed_run.pk}/logs/", {"node": " "}), 400, "invalid")


@pytest.mark.parametrize("path, parameter", [("/api/runs/", "started_before"), ("/api/workflows/", "archived"),
                                             ("/api/workflows/", "page")])
def test_an_empty_query_parameter_is_refused_unless_the_schema_allows_it(api, path, parameter):
    error = assert_error(api("viewer").get(path, {parameter: ""}), 400, "invalid")
    assert [d["path"] for d in error["details"]] == [parameter]
