"""A workflow's last run for the editor over HTTP: the sample its templates are completed from, and a template's
value in that run, rendered by the worker's template engine."""

from __future__ import annotations

import pytest

from engine.services.scheduler import run_start
from engine.services.workflows import workflow_save
from tests.api.test_workflows import assert_error
from tests.conftest import definition, node

pytestmark = pytest.mark.django_db

FETCH = {"id": "fetch", "type": "transform", "config": {"template": {"items": [{"title": "x"}], "count": 2}}}
USE = {"id": "use", "type": "transform", "config": {"template": "{{ nodes.fetch.output.count }}"}}
START = node("start")  # a step on a worker first: a run of inline steps only finishes as it starts


def sample_workflow(drain, slug="sampled", inputs=None):
    wf = workflow_save(definition=definition(slug, [START, FETCH, USE], [("start", "fetch"), ("fetch", "use")]))[0]
    run, _ = run_start(workflow=wf, inputs=inputs or {"topic": "tea"})
    drain()
    return run


def preview(api, template, kind="viewer", slug="sampled", **extra):
    return api(kind).post(f"/api/workflows/{slug}/template-preview/", {"template": template, **extra}, format="json")


def test_sample_holds_the_newest_runs_inputs_and_step_outputs(api, drain):
    sample_workflow(drain, inputs={"topic": "old"})
    run = sample_workflow(drain)
    r = api("viewer").get("/api/workflows/sampled/sample/")
    assert r.status_code == 200, r.content
    body = r.json()
    assert body["run"]["id"] == str(run.pk) and body["run"]["status"] == "succeeded"
    assert body["inputs"] == {"topic": "tea"}
    assert body["nodes"]["fetch"] == {"status": "succeeded", "output": {"items": [{"title": "x"}], "count": 2}}
    assert body["nodes"]["use"]["output"] == 2
    assert body["truncated"] is False


def test_sample_of_a_workflow_that_never_ran_has_no_run(api):
    workflow_save(definition=definition("never", [FETCH], []))
    body = api("viewer").get("/api/workflows/never/sample/").json()
    assert body == {"run": None, "inputs": {}, "nodes": {}, "truncated": False}
    r = preview(api, "{{ inputs.topic }}", slug="never")
    assert r.status_code == 200 and r.json()["ok"] is False
    assert r.json()["message"].startswith("no run yet")


def test_sample_caps_a_large_output(api, drain):
    rows = [{"n": i, "text": "y" * 5000} for i in range(200)]
    big = {"id": "fetch", "type": "transform", "config": {"template": "{{ inputs.rows }}"}}
    wf = workflow_save(definition=definition("big", [START, big], [("start", "fetch")]))[0]
    run_start(workflow=wf, inputs={"rows": rows})
    drain()
    r = api("viewer").get("/api/workflows/big/sample/")
    assert r.status_code == 200
    body = r.json()
    assert body["truncated"] is True
    assert len(r.content) < 150_000  # the output alone is a million characters
    output = body["nodes"]["fetch"]["output"]
    assert 0 < len(output) <= 20 and output[0]["n"] == 0 and output[0]["text"].endswith("…")
    assert len(body["inputs"]["rows"][0]["text"]) < 400
    # the preview renders against the whole value, and shows its text cut short
    whole = preview(api, "{{ nodes.fetch.output | length }}", slug="big").json()
    assert whole["ok"] is True and whole["value"] == 200
    long = preview(api, "{{ nodes.fetch.output }}", slug="big").json()
    assert long["ok"] is True and long["truncated"] is True and len(long["text"]) == 2000


def test_preview_renders_a_template_against_the_last_run(api, drain):
    run = sample_workflow(drain)
    r = preview(api, "{{ nodes.fetch.output.items.0.title }}")
    assert r.status_code == 200, r.content
    assert r.json() == {"run": {"id": str(run.pk), "status": "succeeded", "version": 1,
                                "created_at": r.json()["run"]["created_at"]},
                        "ok": True, "value": "x", "text": "x", "truncated": False, "message": ""}
    mixed = preview(api, "About {{ inputs.topic }}: {{ nodes.fetch.output.count + 1 }} items").json()
    assert mixed["value"] == "About tea: 3 items"
    native = preview(api, "{{ nodes.fetch.output.items }}").json()
    assert native["value"] == [{"title": "x"}] and native["text"] == '[{"title": "x"}]'
    up = preview(api, "{{ upstream.fetch.count }}", upstream=["fetch"]).json()
    assert up["ok"] is True and up["value"] == 2


@pytest.mark.parametrize(("template", "message"), [
    ("{{ nodes.fetch.output.titel }}", "`nodes.fetch.output` has no field `titel` in that run "
                                       "(its fields: `count`, `items`)"),
    ("{{ nodes.fetch.output.items.4.title }}", "`nodes.fetch.output.items` has 1 item(s) in that run, so no item 4"),
    ("{{ nodes.fetcher.output }}", "node `fetcher` has no step in that run"),
    ("{{ inputs.url }}", "`inputs` has no field `url` in that run (its fields: `topic`)"),
    ("{{ nodes.fetch.output.count | nosuchfilter }}", "the template fails on that run: No filter named "
                                                      "'nosuchfilter'."),
    ("{{ nodes.fetch.output.count }", "template syntax error: unexpected '}' (line 1)"),
    ("{{ nodes.fetch.output.count / 0 }}", "the template fails on that run: division by zero"),
])
def test_preview_says_in_words_why_a_template_has_no_value(api, drain, template, message):
    sample_workflow(drain)
    r = preview(api, template)
    assert r.status_code == 200, r.content
    body = r.json()
    assert body["ok"] is False and body["value"] is None
    assert body["message"] == message


def test_sample_and_preview_need_a_role(api, drain):
    sample_workflow(drain)
    for kind in ("viewer", "operator", "designer"):
        assert api(kind).get("/api/workflows/sampled/sample/").status_code == 200
        assert preview(api, "{{ inputs.topic }}", kind=kind).json()["value"] == "tea"
    assert_error(api("norole").get("/api/workflows/sampled/sample/"), 403, "permission_denied")
    assert_error(preview(api, "{{ inputs.topic }}", kind="norole"), 403, "permission_denied")
    assert api("anonymous").get("/api/workflows/sampled/sample/").status_code in (401, 403)
    assert_error(api("viewer").get("/api/workflows/nope/sample/"), 404, "not_found")
    assert_error(preview(api, "{{ 1 }}", slug="nope"), 404, "not_found")
    assert_error(api("viewer").post("/api/workflows/sampled/template-preview/", {}, format="json"), 400, "invalid")


@pytest.mark.parametrize("upstream", [[0], [True], [None], "start", [["start"]]])
def test_preview_refuses_upstream_ids_that_are_not_strings(api, drain, upstream):
    sample_workflow(drain)
    assert_error(preview(api, "{{ 1 }}", upstream=upstream), 400, "invalid")


@pytest.mark.parametrize("template", [0, True, None, ["{{ 1 }}"], {"t": 1}])
def test_preview_refuses_a_template_that_is_not_a_string(api, drain, template):
    sample_workflow(drain)
    assert_error(preview(api, template), 400, "invalid")
