"""A mapped node over HTTP: the run lists it once with counts, its items page in order with their attempts, and
one item (``node[index]``) is retried, skipped or completed through the step URLs."""

from __future__ import annotations

import pytest

from engine.models import StepRun
from engine.services.scheduler import run_start
from engine.services.workflows import workflow_save
from tests.api.test_workflows import assert_error
from tests.conftest import definition, node

pytestmark = pytest.mark.django_db


def _mapped_run(drain, tmp_path, xs):
    flag = tmp_path / "flag"
    d = definition("api-map", [
        {**node("each", "tests.fail_until_flag_at", kwargs={"flag": str(flag), "item": "{{ item }}", "fail": [1, 3]},
                retry={"max_attempts": 1}), "for_each": "{{ inputs.xs }}", "max_parallel": 2},
    ], [], inputs={"type": "object"})
    run, _ = run_start(workflow=workflow_save(definition=d)[0], inputs={"xs": xs})
    drain()
    return run, flag


def test_the_run_lists_a_mapped_node_once_with_counts_by_status(api, drain, tmp_path):
    run, _ = _mapped_run(drain, tmp_path, list(range(5)))
    body = api("viewer").get(f"/api/runs/{run.pk}/").json()
    assert [s["node_id"] for s in body["steps"]] == ["each"]
    each = body["steps"][0]
    assert each["status"] == "failed" and each["map_index"] is None
    assert each["map"] == {"items": 5, "counts": {"succeeded": 3, "failed": 2}, "failed": [1, 3], "max_parallel": 2,
                           "on_item_failure": "fail"}


def test_items_page_in_item_order_with_their_attempts(api, drain, tmp_path):
    run, _ = _mapped_run(drain, tmp_path, list(range(5)))
    client = api("viewer")
    first = client.get(f"/api/runs/{run.pk}/steps/each/items/?page_size=2").json()
    assert first["count"] == 5 and first["next"] is not None
    assert [(i["node_id"], i["map_index"], i["item"], i["status"]) for i in first["results"]] == [
        ("each[0]", 0, 0, "succeeded"), ("each[1]", 1, 1, "failed")]
    assert [a["outcome"] for a in first["results"][1]["attempts"]] == ["failed"]
    assert "item 1" in first["results"][1]["attempts"][0]["error"]
    last = client.get(f"/api/runs/{run.pk}/steps/each/items/?page_size=2&page=3").json()
    assert [i["node_id"] for i in last["results"]] == ["each[4]"]
    failed = client.get(f"/api/runs/{run.pk}/steps/each/items/?status=failed").json()
    assert [i["map_index"] for i in failed["results"]] == [1, 3]
    detail = client.get(f"/api/runs/{run.pk}/steps/each[3]/").json()
    assert detail["map_index"] == 3 and detail["status"] == "failed" and len(detail["attempts"]) == 1


def test_items_of_a_step_that_is_not_mapped_or_missing_are_404(api, drain, tmp_path):
    run, _ = _mapped_run(drain, tmp_path, [0])
    client = api("viewer")
    assert_error(client.get(f"/api/runs/{run.pk}/steps/ghost/items/"), 404, "not_found")
    assert_error(client.get(f"/api/runs/{run.pk}/steps/each[7]/"), 404, "not_found")
    assert_error(client.get(f"/api/runs/{run.pk}/steps/each/items/?page=9"), 404, "not_found")


def test_retry_skip_and_complete_one_item_through_the_step_urls(api, drain, tmp_path):
    run, flag = _mapped_run(drain, tmp_path, list(range(5)))
    client = api("operator")
    flag.write_text("")
    r = client.post(f"/api/runs/{run.pk}/steps/each[1]/retry/")
    assert r.status_code == 200, r.content
    assert r.json()["node_id"] == "each[1]" and r.json()["status"] == "queued"
    assert StepRun.objects.get(run=run, node_id="each").status == "waiting"
    drain()
    assert StepRun.objects.get(run=run, node_id="each[1]").status == "succeeded"
    assert_error(client.post(f"/api/runs/{run.pk}/steps/each[1]/retry/"), 409, "invalid_state")
    r = client.post(f"/api/runs/{run.pk}/steps/each[3]/complete/", {"output": {"item": "by hand"}}, format="json")
    assert r.status_code == 200 and r.json()["status"] == "succeeded"
    each = StepRun.objects.get(run=run, node_id="each")
    assert each.status == "succeeded"
    assert each.output == [{"item": 0}, {"item": 1}, {"item": 2}, {"item": "by hand"}, {"item": 4}]
    assert client.get(f"/api/runs/{run.pk}/").json()["status"] == "succeeded"


def test_skip_one_item_gives_null_in_the_output(api, drain, tmp_path):
    run, _ = _mapped_run(drain, tmp_path, [0, 1])
    r = api("operator").post(f"/api/runs/{run.pk}/steps/each[1]/skip/")
    assert r.status_code == 200 and r.json()["status"] == "skipped"
    assert StepRun.objects.get(run=run, node_id="each").output == [{"item": 0}, None]
