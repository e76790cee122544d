"""Credentials over HTTP: secrets go in and never come out."""

from __future__ import annotations

import pytest

from engine.integrations.credentials import credential_secret
from engine.models import Credential
from tests.api.test_workflows import assert_error

pytestmark = pytest.mark.django_db

SECRET = "sk-live-0123456789abcdef"


def test_create_list_get_never_return_the_secret(api):
    designer = api("designer")
    r = designer.post("/api/credentials/", {"name": "openai", "kind": "api_key", "secret": SECRET}, format="json")
    assert r.status_code == 201, r.content
    assert set(r.json()) == {"name", "kind", "allowed_hosts", "created_at", "rotated_at"}
    viewer = api("viewer")
    listed = viewer.get("/api/credentials/")
    one = viewer.get("/api/credentials/openai/")
    assert [(c["name"], c["kind"]) for c in listed.json()] == [("openai", "api_key")]
    assert one.json()["name"] == "openai"
    for response in (r, listed, one):
        assert SECRET not in response.content.decode()
    assert credential_secret("openai") == SECRET


def test_create_duplicate_name_is_409(api):
    designer = api("designer")
    designer.post("/api/credentials/", {"name": "dup", "secret": SECRET}, format="json")
    r = designer.post("/api/credentials/", {"name": "dup", "secret": "other"}, format="json")
    assert_error(r, 409, "conflict")
    assert credential_secret("dup") == SECRET


def test_create_with_bad_name_or_kind_is_400_and_stores_nothing(api):
    designer = api("designer")
    assert_error(designer.post("/api/credentials/", {"name": "bad name!", "secret": SECRET}, format="json"),
                 400, "credential_invalid")
    assert_error(designer.post("/api/credentials/", {"name": "ok", "kind": "magic", "secret": SECRET},
                               format="json"), 400, "invalid")
    assert_error(designer.post("/api/credentials/", {"name": "ok"}, format="json"), 400, "invalid")
    assert Credential.objects.count() == 0


def test_rotate_replaces_the_secret(api):
    designer = api("designer")
    designer.post("/api/credentials/", {"name": "svc", "kind": "bearer", "secret": SECRET}, format="json")
    r = designer.post("/api/credentials/svc/rotate/", {"secret": "new-secret-value"}, format="json")
    assert r.status_code == 200 and r.json()["rotated_at"]
    assert "new-secret-value" not in r.content.decode()
    assert credential_secret("svc") == "new-secret-value"
    assert_error(designer.post("/api/credentials/nope/rotate/", {"secret": "x"}, format="json"), 404, "not_found")


def test_delete_removes_it_and_a_second_delete_is_404(api):
    designer = api("designer")
    designer.post("/api/credentials/", {"name": "gone", "secret": SECRET}, format="json")
    assert designer.delete("/api/credentials/gone/").status_code == 204
    assert not Credential.objects.filter(name="gone").exists()
    assert_error(designer.delete("/api/credentials/gone/"), 404, "not_found")
    assert_error(api("viewer").get("/api/credentials/gone/"), 404, "not_found")


def test_allowed_hosts_are_set_on_create_read_back_and_replaced_by_patch(api):
    designer = api("designer")
    r = designer.post("/api/credentials/", {"name": "partner", "kind": "bearer", "secret": SECRET,
                                            "allowed_hosts": ["api.partner.example", "*.partner.example"]},
                      format="json")
    assert r.status_code == 201, r.content
    assert r.json()["allowed_hosts"] == ["api.partner.example", "*.partner.example"]
    assert api("viewer").get("/api/credentials/partner/").json()["allowed_hosts"] == ["api.partner.example",
                                                                                      "*.partner.example"]
    designer.post("/api/credentials/", {"name": "bare", "secret": SECRET}, format="json")
    assert [c["allowed_hosts"] for c in api("viewer").get("/api/credentials/").json()] == [[], [
        "api.partner.example", "*.partner.example"]]
    patched = api("superuser").patch("/api/credentials/bare/", {"allowed_hosts": ["10.0.0.0/8", "api.x.example"]},
                                     format="json")
    assert patched.status_code == 200, patched.content
    assert Credential.objects.get(name="bare").allowed_hosts == ["10.0.0.0/8", "api.x.example"]
    assert SECRET not in patched.content.decode()
    assert_error(api("superuser").patch("/api/credentials/nope/", {"allowed_hosts": []}, format="json"),
                 404, "not_found")
    unchanged = api("superuser").patch("/api/credentials/bare/", {}, format="json")
    assert unchanged.status_code == 200 and unchanged.json()["allowed_hosts"] == ["10.0.0.0/8", "api.x.example"]


@pytest.mark.parametrize("hosts, code", [
    (["https://api.example.org"], "credential_invalid"),
    (["api.example.org:443"], "credential_invalid"),
    (["api.example.org/v1"], "credential_invalid"),
    ([""], "invalid"),
    ([5], "invalid"),
    ("api.example.org", "invalid"),
])
def test_a_host_pattern_the_allow_list_cannot_read_is_400_and_stores_nothing(api, hosts, code):
    r = api("designer").post("/api/credentials/", {"name": "partner", "secret": SECRET, "allowed_hosts": hosts},
                             format="json")
    assert_error(r, 400, code)
    assert Credential.objects.count() == 0


@pytest.mark.parametrize("secret", [12345678, 1.5, True, {"key": "value"}, ["a-secret"]])
def test_a_secret_that_is_not_a_string_is_400(api, secret):
    designer = api("designer")
    assert_error(designer.post("/api/credentials/", {"name": "typed", "secret": secret}, format="json"),
                 400, "invalid")
    assert Credential.objects.count() == 0
    designer.post("/api/credentials/", {"name": "typed", "secret": SECRET}, format="json")
    assert_error(designer.post("/api/credentials/typed/rotate/", {"secret": secret}, format="json"), 400, "invalid")
    assert credential_secret("typed") == SECRET


def test_the_schema_says_what_the_credential_endpoints_accept(api):
    from engine.integrations.credentials import NAME_RE

    schema = api("viewer").get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    parts = schema["components"]["schemas"]
    create = parts["CredentialCreateRequest"]["properties"]
    assert create["name"]["pattern"] == NAME_RE.pattern
    assert create["secret"]["type"] == "string"
    for component in ("CredentialCreateRequest", "PatchedCredentialUpdateRequest", "Credential"):
        hosts = parts[component]["properties"]["allowed_hosts"]
        assert hosts["type"] == "array" and hosts["items"]["type"] == "string", component
    patch = schema["paths"]["/api/credentials/{name}/"]["patch"]
    assert patch["operationId"] == "credential_update"
    assert set(patch["responses"]) >= {"200", "400", "403"}
