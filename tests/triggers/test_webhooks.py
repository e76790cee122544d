"""Webhook endpoints, driven by a real HTTP client against a real server (``live_server``), signed with the
``standardwebhooks`` package: valid, tampered, stale and replayed signatures, redelivery, invalid inputs,
failing mappings, 404, 413, 429. No refused request starts a run."""

from __future__ import annotations

import httpx
import pytest

from engine.models import Run, WebhookDelivery, WebhookEndpoint
from tests.api.conftest import client_for
from tests.triggers.conftest import signed, stale, ticket_workflow

pytestmark = pytest.mark.django_db(transaction=True)


def create(slug="tickets", **body):
    r = client_for("designer").post(f"/api/workflows/{slug}/webhooks/", body, format="json")
    assert r.status_code == 201, r.content
    return r.json()


def post(live_server, hook, text, headers):
    return httpx.post(f"{live_server.url}/hooks/{hook['id']}/", content=text.encode(), headers=headers, timeout=30)


@pytest.fixture
def hook(live_server):
    ticket_workflow()
    return create(description="tickets")


def test_create_shows_the_secret_once_and_a_url(hook):
    assert hook["secret"].startswith("whsec_") and hook["url"].endswith(f"/hooks/{hook['id']}/")
    r = client_for("viewer").get(f"/api/webhooks/{hook['id']}/")
    assert r.status_code == 200 and "secret" not in r.json()
    assert hook["secret"] not in WebhookEndpoint.objects.get(pk=hook["id"]).secret_encrypted
    listed = client_for("viewer").get("/api/workflows/tickets/webhooks/").json()
    assert [h["id"] for h in listed] == [hook["id"]] and "secret" not in listed[0]


def test_a_valid_delivery_starts_a_run_and_a_redelivery_returns_the_same_run(live_server, hook):
    text, headers = signed(hook["secret"], {"ticket": "T-1"}, msg_id="msg_a")
    r = post(live_server, hook, text, headers)
    assert r.status_code == 202, r.text
    run = Run.objects.get(pk=r.json()["run"])
    assert run.inputs == {"ticket": "T-1"}
    assert run.trigger == {"kind": "webhook", "endpoint": hook["id"], "delivery_id": "msg_a"}
    again = post(live_server, hook, text, headers)  # the sender retried: the same signed request replayed
    assert again.status_code == 202 and again.json() == {"run": str(run.pk), "delivery_id": "msg_a",
                                                         "duplicate": True}
    assert Run.objects.count() == 1
    outcomes = list(WebhookDelivery.objects.order_by("id").values_list("outcome", "status_code", "run_id"))
    assert outcomes == [("accepted", 202, run.pk), ("duplicate", 202, run.pk)]
    r = client_for("viewer").get("/api/runs/?trigger=webhook")
    assert [x["id"] for x in r.json()["results"]] == [str(run.pk)]


@pytest.mark.parametrize("case", ["tampered body", "wrong secret", "stale", "from the future", "no signature",
                                  "other id", "garbage signature"])
def test_a_bad_or_stale_signature_is_401_and_starts_nothing(live_server, hook, case):
    from datetime import UTC, datetime, timedelta

    text, headers = signed(hook["secret"], {"ticket": "T-1"})
    if case == "tampered body":
        text = text.replace("T-1", "T-2")
    elif case == "wrong secret":
        text, headers = signed("whsec_" + "QUJD" * 8, {"ticket": "T-1"})
    elif case == "stale":
        text, headers = signed(hook["secret"], {"ticket": "T-1"}, at=stale())
    elif case == "from the future":
        text, headers = signed(hook["secret"], {"ticket": "T-1"}, at=datetime.now(UTC) + timedelta(minutes=6))
    elif case == "no signature":
        del headers["webhook-signature"]
    elif case == "other id":  # a captured signature replayed under another delivery id
        headers["webhook-id"] = "msg_other"
    elif case == "garbage signature":
        headers["webhook-signature"] = "v1,@@@ nonsense"
    r = post(live_server, hook, text, headers)
    assert r.status_code == 401, r.text
    assert r.json()["error"]["code"] == "bad_signature"
    assert Run.objects.count() == 0
    assert list(WebhookDelivery.objects.values_list("outcome", "status_code")) == [("bad_signature", 401)]


def test_invalid_inputs_are_400_naming_the_field_and_start_nothing(live_server, hook):
    text, headers = signed(hook["secret"], {"ticket": 7})
    r = post(live_server, hook, text, headers)
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert error["code"] == "inputs_invalid" and error["details"][0]["path"] == "inputs['ticket']"
    text, headers = signed(hook["secret"], None, body="{not json", msg_id="msg_2")
    r = post(live_server, hook, text, headers)
    assert r.status_code == 400 and r.json()["error"]["details"] == [{"field": "body"}]
    assert Run.objects.count() == 0


def test_a_mapping_shapes_the_inputs_and_one_that_fails_is_400_naming_it(live_server):
    ticket_workflow()
    jmes = create(mapping="{ticket: body.issue.key, priority: body.issue.priority}", mapping_language="jmespath")
    text, headers = signed(jmes["secret"], {"issue": {"key": "T-9", "priority": 2}})
    r = post(live_server, jmes, text, headers)
    assert r.status_code == 202, r.text
    assert Run.objects.get(pk=r.json()["run"]).inputs == {"ticket": "T-9", "priority": 2}

    templ = create(mapping={"ticket": "{{ body.issue.key | upper }}"})
    text, headers = signed(templ["secret"], {"issue": {"key": "t-10"}})
    r = post(live_server, templ, text, headers)
    assert r.status_code == 202 and Run.objects.get(pk=r.json()["run"]).inputs == {"ticket": "T-10"}

    text, headers = signed(templ["secret"], {"other": 1}, msg_id="msg_fails")  # body.issue is undefined
    r = post(live_server, templ, text, headers)
    assert r.status_code == 400, r.text
    assert r.json()["error"]["code"] == "trigger_invalid" and r.json()["error"]["details"][0]["field"] == "mapping"
    assert Run.objects.count() == 2


def test_a_bad_mapping_is_refused_when_saved(hook):
    r = client_for("designer").patch(f"/api/webhooks/{hook['id']}/", {"mapping": "{{ body.", "mapping_language":
                                                                       "template"}, format="json")
    assert r.status_code == 400 and r.json()["error"]["details"][0]["field"] == "mapping"
    r = client_for("designer").post("/api/workflows/tickets/webhooks/", {"mapping": "a[", "mapping_language":
                                                                          "jmespath"}, format="json")
    assert r.status_code == 400 and r.json()["error"]["details"][0]["field"] == "mapping"
    assert WebhookEndpoint.objects.count() == 1 and WebhookEndpoint.objects.get().mapping is None


def test_unknown_and_disabled_endpoints_are_404(live_server, hook):
    text, headers = signed(hook["secret"], {"ticket": "T-1"})
    r = httpx.post(f"{live_server.url}/hooks/00000000-0000-0000-0000-000000000000/", content=text, headers=headers)
    assert r.status_code == 404
    r = client_for("designer").patch(f"/api/webhooks/{hook['id']}/", {"enabled": False}, format="json")
    assert r.status_code == 200 and r.json()["enabled"] is False
    assert post(live_server, hook, text, headers).status_code == 404
    assert Run.objects.count() == 0


def test_a_body_over_the_limit_is_413(live_server, hook, settings):
    text, headers = signed(hook["secret"], {"ticket": "T" * 300_000})
    r = post(live_server, hook, text, headers)
    assert r.status_code == 413, r.text
    assert Run.objects.count() == 0
    assert list(WebhookDelivery.objects.values_list("outcome", flat=True)) == ["too_large"]


def test_deliveries_over_the_rate_are_429_and_each_endpoint_has_its_own_rate(live_server):
    ticket_workflow()
    hook = create(rate_per_minute=1, rate_burst=2)
    other = create(rate_per_minute=1, rate_burst=2)  # the same workflow, another endpoint

    def deliver(endpoint, i):
        text, headers = signed(endpoint["secret"], {"ticket": f"T-{i}"}, msg_id=f"msg_{i}")
        return post(live_server, endpoint, text, headers)

    answers = [deliver(hook, i) for i in range(3)]
    assert [a.status_code for a in answers] == [202, 202, 429]
    assert answers[2].headers["Retry-After"] == "60"
    assert Run.objects.count() == 2
    assert [deliver(other, i).status_code for i in range(10, 13)] == [202, 202, 429]
    assert deliver(hook, 3).status_code == 429
    assert Run.objects.count() == 4


def test_rotation_replaces_the_secret(live_server, hook):
    r = client_for("designer").post(f"/api/webhooks/{hook['id']}/rotate/")
    assert r.status_code == 200
    new = r.json()["secret"]
    assert new != hook["secret"] and r.json()["rotated_at"]
    text, headers = signed(hook["secret"], {"ticket": "T-1"})
    assert post(live_server, hook, text, headers).status_code == 401
    text, headers = signed(new, {"ticket": "T-1"}, msg_id="msg_new")
    assert post(live_server, hook, text, headers).status_code == 202


def test_a_configured_header_names_the_delivery(live_server):
    ticket_workflow()
    hook = create(delivery_id_header="X-Provider-Event")
    first = second = None
    for msg_id in ("msg_1", "msg_2"):  # the provider signs each attempt anew, but its event id stays
        text, headers = signed(hook["secret"], {"ticket": "T-1"}, msg_id=msg_id)
        headers["X-Provider-Event"] = "evt_42"
        r = post(live_server, hook, text, headers)
        assert r.status_code == 202, r.text
        first, second = (r.json()["run"], second) if first is None else (first, r.json()["run"])
    assert first == second and Run.objects.count() == 1
    text, headers = signed(hook["secret"], {"ticket": "T-1"}, msg_id="msg_3")
    r = post(live_server, hook, text, headers)
    assert r.status_code == 400 and r.json()["error"]["details"] == [{"field": "X-Provider-Event"}]


def test_deliveries_are_listed_newest_first(live_server, hook):
    for msg_id in ("m1", "m2"):
        text, headers = signed(hook["secret"], {"ticket": "T"}, msg_id=msg_id)
        post(live_server, hook, text, headers)
    r = client_for("viewer").get(f"/api/webhooks/{hook['id']}/deliveries/")
    assert [(d["delivery_id"], d["outcome"], d["status_code"]) for d in r.json()] == [
        ("m2", "accepted", 202), ("m1", "accepted", 202)]
