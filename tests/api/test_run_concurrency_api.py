"""Run concurrency over HTTP: what starting a run answers under each strategy, how a waiting run reads, and the
errors that name the field."""

from __future__ import annotations

import pytest

from engine.models import Run
from engine.services.workflows import workflow_save
from tests.api.test_workflows import assert_error
from tests.conftest import definition, node

pytestmark = pytest.mark.django_db

USER = {"type": "object", "properties": {"user": {"type": "string"}}}


def concurrent(slug: str, **concurrency) -> dict:
    return definition(slug, [node("a")], [], inputs=USER,
                      concurrency={"key": "{{ inputs.user }}", "limit": 1, **concurrency})


@pytest.fixture
def operator(api):
    return api("operator")


def post_run(client, slug: str, user: str = "u1", **headers):
    return client.post(f"/api/workflows/{slug}/runs/", {"inputs": {"user": user}}, format="json", headers=headers)


def test_a_run_over_the_limit_is_created_waiting_and_says_why(operator):
    workflow_save(definition=concurrent("q-api"))
    first = post_run(operator, "q-api")
    assert first.status_code == 201 and first.json()["status"] == "running"
    assert first.json()["concurrency_key"] == "u1" and first.json()["waiting"] is None
    second = post_run(operator, "q-api")
    assert second.status_code == 201, second.content
    body = second.json()
    assert body["status"] == "pending" and body["started_at"] is None
    assert body["waiting"] == {"reason": "concurrency", "key": "u1",
                               "message": "waiting for a run of key 'u1' to finish"}
    assert {s["status"] for s in body["steps"]} == {"pending"}
    assert operator.get(f"/api/runs/{body['id']}/").json()["waiting"]["key"] == "u1"
    listed = operator.get("/api/runs/", {"status": "pending"}).json()["results"]
    assert [(r["id"], r["waiting"]["reason"]) for r in listed] == [(body["id"], "concurrency")]
    cancelled = operator.post(f"/api/runs/{body['id']}/cancel/")
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    assert cancelled.json()["waiting"] is None


def test_cancel_newest_answers_201_with_the_run_cancelled(operator):
    workflow_save(definition=concurrent("n-api", strategy="cancel_newest"))
    assert post_run(operator, "n-api").json()["status"] == "running"
    r = post_run(operator, "n-api", **{"Idempotency-Key": "once"})
    assert r.status_code == 201, r.content
    body = r.json()
    assert body["status"] == "cancelled" and body["started_at"] is None
    assert "not started: 1 run(s) of key 'u1' already running" in body["error"]
    again = post_run(operator, "n-api", **{"Idempotency-Key": "once"})
    assert again.status_code == 200 and again.json()["id"] == body["id"]  # the same run, nothing new
    assert post_run(operator, "n-api", user="u2").json()["status"] == "running"


def test_cancel_in_progress_answers_201_and_cancels_the_older_run(operator):
    workflow_save(definition=concurrent("p-api", strategy="cancel_in_progress"))
    old = post_run(operator, "p-api").json()
    new = post_run(operator, "p-api")
    assert new.status_code == 201 and new.json()["status"] == "running"
    old = operator.get(f"/api/runs/{old['id']}/").json()
    assert old["status"] == "cancelled" and old["error"].startswith(f"cancelled by run {new.json()['id']}")


def test_a_key_that_fails_to_render_is_400_naming_the_field_and_starts_nothing(operator):
    workflow_save(definition=definition("k-api", [node("a")], [], inputs={"type": "object"},
                                        concurrency={"key": "{{ inputs.user.name }}", "limit": 1}))
    r = operator.post("/api/workflows/k-api/runs/", {"inputs": {}}, format="json")
    error = assert_error(r, 400, "inputs_invalid")
    assert error["details"][0]["path"] == "concurrency.key" and "concurrency key" in error["message"]
    assert not Run.objects.exists()


@pytest.mark.parametrize(("concurrency", "code", "path"), [
    ({"limit": 0}, "schema", "concurrency.limit"),
    ({"limit": 1, "strategy": "lifo"}, "schema", "concurrency.strategy"),
    ({"limit": 1, "key": "{{ inputs.user "}, "concurrency_key_invalid", "concurrency.key"),
])
def test_a_bad_concurrency_is_refused_at_save_naming_the_field(designer, concurrency, code, path):
    d = definition("bad-c", [node("a")], [], concurrency=concurrency)
    error = assert_error(designer.post("/api/workflows/", {"definition": d}, format="json"), 400, "graph_invalid")
    assert [(i["code"], i["path"]) for i in error["details"]] == [(code, path)]
    validated = designer.post("/api/workflows/validate/", {"definition": d}, format="json")
    assert path in validated.content.decode()


def test_the_definition_schema_serves_concurrency(api):
    schema = api("viewer").get("/api/workflow-schema/").json()
    assert schema["properties"]["concurrency"]["properties"]["strategy"]["enum"] == [
        "queue", "cancel_in_progress", "cancel_newest"]
    openapi = api("viewer").get("/api/schema/", headers={"Accept": "application/json"})
    assert "cancel_in_progress" in openapi.content.decode()
