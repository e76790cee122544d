"""One error shape everywhere, body limits, authentication (token and session with CSRF)."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command
from django.test import Client
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from engine.models import Run, Workflow
from engine.services.workflows import workflow_save
from tests.api.conftest import make_user, simple_definition
from tests.api.test_workflows import assert_error

pytestmark = pytest.mark.django_db


def test_malformed_json_is_400_and_saves_nothing(designer):
    r = designer.post("/api/workflows/", data='{"definition": {', content_type="application/json")
    err = assert_error(r, 400, "malformed_request")
    assert "JSON" in err["message"]
    assert Workflow.objects.count() == 0


def test_oversized_body_is_413_and_saves_nothing(designer, settings):
    settings.WEFT_MAX_BODY_BYTES = 4096
    big = simple_definition("big", description="x" * 5000)
    err = assert_error(designer.post("/api/workflows/", {"definition": big}, format="json"), 413, "body_too_large")
    assert "4096" in err["message"] and err["details"] == [{"limit": 4096}]
    assert Workflow.objects.count() == 0


def test_default_body_limit_is_two_mebibytes(designer, settings):
    assert settings.WEFT_MAX_BODY_BYTES == 2 * 1024 * 1024
    workflow_save(definition=simple_definition("huge"))
    payload = '{"inputs": {"blob": "' + "x" * (2 * 1024 * 1024) + '"}}'
    r = make_operator_client().post("/api/workflows/huge/runs/", data=payload, content_type="application/json")
    assert_error(r, 413, "body_too_large")
    assert Run.objects.count() == 0


def make_operator_client():
    client = APIClient()
    token, _ = Token.objects.get_or_create(user=make_user("operator"))
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    return client


def test_unsupported_media_type_is_415(designer):
    r = designer.post("/api/workflows/", data="definition=x", content_type="application/x-www-form-urlencoded")
    assert_error(r, 415, "unsupported_media_type")


def test_unknown_api_path_is_404_json(api):
    r = api("viewer").get("/api/no-such-thing/")
    assert_error(r, 404, "not_found")
    assert_error(Client().get("/api/no-such-thing/"), 404, "not_found")  # even without a user


def test_wrong_method_is_405_json_with_allow_header(api):
    r = api("designer").patch("/api/workflows/", {}, format="json")
    assert_error(r, 405, "method_not_allowed")
    assert "GET" in r["Allow"] and "POST" in r["Allow"]


def test_unexpected_exception_is_a_logged_500_in_the_json_shape_without_traceback(api, monkeypatch, caplog):
    def broken():
        raise RuntimeError("database exploded")

    monkeypatch.setattr("api.views.catalog.queue_stats", broken)
    client = api("viewer")
    client.raise_request_exception = False
    r = client.get("/api/queues/")
    err = assert_error(r, 500, "internal_error")
    assert "exploded" not in r.content.decode() and "Traceback" not in r.content.decode()
    assert err["message"].startswith("internal error")
    assert any("database exploded" in str(rec.exc_info[1]) for rec in caplog.records if rec.exc_info)


def test_unauthenticated_requests_get_401_with_token_challenge():
    r = APIClient().get("/api/workflows/")
    assert_error(r, 401, "not_authenticated")
    assert r["WWW-Authenticate"] == "Token"


def test_a_bad_token_is_401():
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token not-a-real-token")
    assert_error(client.get("/api/workflows/"), 401, "authentication_failed")


def test_drf_create_token_makes_a_token_that_authenticates():
    make_user("viewer")
    out = io.StringIO()
    call_command("drf_create_token", "u-viewer", stdout=out)
    key = Token.objects.get(user__username="u-viewer").key
    assert key in out.getvalue()
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    assert client.get("/api/workflows/").status_code == 200


def test_session_auth_requires_the_csrf_token_for_writes():
    user = make_user("designer")
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(user)
    assert client.get("/api/workflows/").status_code == 200  # reads need no token
    body = {"definition": simple_definition("sess")}
    refused = client.post("/api/workflows/", body, format="json")
    assert_error(refused, 403, "csrf_failed")
    assert Workflow.objects.count() == 0
    client.get("/accounts/login/")  # sets the csrftoken cookie
    token = client.cookies["csrftoken"].value
    accepted = client.post("/api/workflows/", body, format="json", HTTP_X_CSRFTOKEN=token)
    assert accepted.status_code == 201, accepted.content


def test_schema_is_openapi_3_and_describes_the_error_shape(api):
    r = api("viewer").get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert r.status_code == 200
    schema = r.json()
    assert schema["openapi"].startswith("3.")
    assert "/api/workflows/{slug}/runs/" in schema["paths"]
    start = schema["paths"]["/api/workflows/{slug}/runs/"]["post"]
    assert {"200", "201", "400", "401", "403", "404", "409", "413"} <= set(start["responses"])
    assert any(p["name"] == "Idempotency-Key" and p["in"] == "header" for p in start["parameters"])
    assert schema["components"]["schemas"]["Error"]["required"] == ["error"]
    assert {"tokenAuth", "cookieAuth"} <= set(schema["components"]["securitySchemes"])


def test_swagger_ui_is_served_from_local_static_files():
    client = Client()
    client.force_login(make_user("viewer"))
    r = client.get("/api/docs/")
    assert r.status_code == 200 and b"swagger-ui" in r.content
    assert b"/static/drf_spectacular_sidecar/" in r.content and b"cdn.jsdelivr" not in r.content


def test_schema_and_docs_need_a_user():
    assert_error(APIClient().get("/api/schema/"), 401, "not_authenticated")
    assert_error(APIClient().get("/api/docs/"), 401, "not_authenticated")
