"""Request bodies built to break the parser: answered 400 with a clear message, never 500."""

from __future__ import annotations

import json

import pytest

from engine.core.security import MAX_JSON_DEPTH
from engine.models import Run, Workflow
from engine.services.workflows import workflow_save
from tests.api.conftest import client_for, simple_definition

pytestmark = pytest.mark.django_db


def nested(depth: int, leaf=1):
    """``depth`` levels of arrays around ``leaf``, built without recursion."""
    value = leaf
    for _ in range(depth):
        value = [value]
    return value


def post_raw(kind: str, url: str, body: str):
    return client_for(kind).generic("POST", url, body.encode("utf-8"), content_type="application/json")


@pytest.mark.parametrize("url", ["/api/workflows/", "/api/workflows/validate/", "/api/workflows/wf/runs/"])
@pytest.mark.parametrize("depth", [10_000, MAX_JSON_DEPTH + 1])
def test_a_body_nested_too_deep_is_refused_with_the_limit(url, depth):
    workflow_save(definition=simple_definition())
    body = "[" * depth + "]" * depth
    r = post_raw("designer", url, body)
    assert r.status_code == 400, r.content
    error = r.json()["error"]
    assert error["code"] == "malformed_request"
    assert f"nested deeper than {MAX_JSON_DEPTH} levels" in error["message"]
    assert Run.objects.count() == 0 and Workflow.objects.count() == 1


def test_run_inputs_nested_up_to_the_limit_are_accepted():
    workflow_save(definition=simple_definition())
    # {"inputs": {"deep": [[...]]}}: the body's object, inputs' object, then the arrays.
    body = json.dumps({"inputs": {"deep": nested(MAX_JSON_DEPTH - 2)}})
    r = post_raw("operator", "/api/workflows/wf/runs/", body)
    assert r.status_code == 201, r.content
    too_deep = json.dumps({"inputs": {"deep": nested(MAX_JSON_DEPTH - 1)}})
    assert post_raw("operator", "/api/workflows/wf/runs/", too_deep).status_code == 400
    assert Run.objects.count() == 1


def test_an_integer_with_thousands_of_digits_is_refused():
    workflow_save(definition=simple_definition())
    r = post_raw("operator", "/api/workflows/wf/runs/", '{"inputs": {"n": ' + "9" * 5000 + "}}")
    assert r.status_code == 400, r.content
    assert r.json()["error"]["code"] == "malformed_request"
    assert Run.objects.count() == 0


def test_a_body_that_is_not_utf8_is_refused():
    r = client_for("designer").generic("POST", "/api/workflows/validate/", b'{"definition": "\xff\xfe"}',
                                       content_type="application/json")
    assert r.status_code == 400, r.content
    assert r.json()["error"]["code"] == "malformed_request"
