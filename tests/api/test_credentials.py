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
    assert set(r.json()) == {"name", "kind", "created_at", "rotated_at"}
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
