"""The OpenAPI schema and Swagger UI refuse a user without a role the way every endpoint does: 403 JSON that
names the role needed."""

from __future__ import annotations

import pytest

from tests.api.conftest import client_for

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("path, accept", [("/api/schema/", "application/vnd.oai.openapi"),
                                          ("/api/schema/", "application/vnd.oai.openapi+json"),
                                          ("/api/docs/", "text/html")])
def test_schema_and_docs_refuse_a_user_without_a_role_naming_the_role_needed(path, accept):
    r = client_for("norole").get(path, HTTP_ACCEPT=accept)
    assert r.status_code == 403
    assert r["Content-Type"].startswith("application/json")
    error = r.json()["error"]
    assert error["code"] == "permission_denied"
    assert error["message"] == "this action needs the viewer, operator or designer role"
    assert client_for("viewer").get(path, HTTP_ACCEPT=accept).status_code == 200
