"""/api/limits/: create, read with buckets, change, delete; bad values refused naming the field."""

from __future__ import annotations

import pytest

from engine.models import Limit

pytestmark = pytest.mark.django_db


def test_create_read_change_delete(api):
    client = api("designer")
    r = client.post("/api/limits/", {"name": "openai", "concurrency": 3,
                                     "rate": {"limit": 10, "period_s": 1, "burst": 0}}, format="json")
    assert r.status_code == 201, r.content
    assert r.json() | {"created_at": None, "updated_at": None} == {
        "name": "openai", "concurrency": 3, "rate": {"limit": 10, "period_s": 1.0, "burst": 0},
        "created_at": None, "updated_at": None, "buckets": []}
    assert [x["name"] for x in client.get("/api/limits/").json()] == ["openai"]
    r = client.patch("/api/limits/openai/", {"concurrency": None}, format="json")
    assert r.status_code == 200 and r.json()["concurrency"] is None and r.json()["rate"]["limit"] == 10
    r = client.patch("/api/limits/openai/", {"rate": None}, format="json")
    assert r.status_code == 400 and r.json()["error"]["details"][0]["path"] == "concurrency"
    assert Limit.objects.get(name="openai").rate_limit == 10  # nothing half-saved
    assert client.post("/api/limits/", {"name": "openai", "concurrency": 1}, format="json").status_code == 409
    assert client.delete("/api/limits/openai/").status_code == 204
    assert client.get("/api/limits/openai/").status_code == 404


@pytest.mark.parametrize(("body", "path"), [
    ({"name": "a", "concurrency": 0}, "concurrency"),
    ({"name": "a", "concurrency": -3}, "concurrency"),
    ({"name": "a", "rate": {"limit": 0, "period_s": 1}}, "rate.limit"),
    ({"name": "a", "rate": {"limit": 5, "period_s": 0}}, "rate.period_s"),
    ({"name": "a", "rate": {"limit": 5, "period_s": -1}}, "rate.period_s"),
    ({"name": "a", "rate": {"limit": 5, "period_s": 1, "burst": -1}}, "rate.burst"),
    ({"name": "a"}, "concurrency"),
    ({"name": "-a", "concurrency": 1}, "name"),
])
def test_zero_negative_or_missing_values_are_refused_naming_the_field(api, body, path):
    r = api("designer").post("/api/limits/", body, format="json")
    assert r.status_code == 400, r.content
    assert path in {d.get("path") for d in r.json()["error"]["details"]}, r.json()
    assert not Limit.objects.exists()
