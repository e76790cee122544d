"""A workflow's grid over HTTP: the last runs as columns (oldest first), the steps as rows."""

from __future__ import annotations

import pytest

from engine.services.scheduler import run_start
from engine.services.workflows import workflow_save
from tests.api.test_workflows import assert_error
from tests.conftest import definition, node

pytestmark = pytest.mark.django_db


def test_grid_has_a_column_per_run_and_a_cell_per_step(api, drain):
    ok = definition("grid", [node("a"), node("b")], [("a", "b")])
    wf = workflow_save(definition=ok)[0]
    first, _ = run_start(workflow=wf)
    drain()
    workflow_save(definition=definition("grid", [node("a"), node("b", "tests.raise", retry={"max_attempts": 1}),
                                                 node("c")], [("a", "b"), ("b", "c")]))
    second, _ = run_start(workflow="grid")
    drain()
    r = api("viewer").get("/api/workflows/grid/grid/")
    assert r.status_code == 200, r.content
    body = r.json()
    assert [(x["id"], x["status"], x["version"]) for x in body["runs"]] == [
        (str(first.pk), "succeeded", 1), (str(second.pk), "failed", 2)]
    rows = {row["node_id"]: row["cells"] for row in body["rows"]}
    assert [row["node_id"] for row in body["rows"]] == ["a", "b", "c"]
    assert rows["b"] == [{"status": "succeeded", "attempt": 1}, {"status": "failed", "attempt": 1}]
    assert rows["c"] == [None, {"status": "upstream_failed", "attempt": 0}]
    assert len(api("viewer").get("/api/workflows/grid/grid/?runs=1").json()["runs"]) == 1
    assert_error(api("viewer").get("/api/workflows/grid/grid/?runs=0"), 400, "invalid")
    assert_error(api("viewer").get("/api/workflows/nope/grid/"), 404, "not_found")
