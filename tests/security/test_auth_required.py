"""Nobody gets in without logging in: every URL pattern Django knows, and every websocket route, is walked
with an anonymous request; only the login pages and the probes answer, and /metrics only to its own
audience."""

from __future__ import annotations

import re

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver

from engine.integrations.credentials import credential_create
from engine.services.scheduler import run_start
from engine.services.schedules import schedule_create
from engine.services.workflows import workflow_save
from tests.conftest import definition, node
from tests.webui.conftest import run_async

# Public by design: the login forms, logging out (it only ends a session), and the liveness probe.
PUBLIC = {"accounts/login/", "accounts/logout/", "admin/login/", "admin/logout/", "healthz"}
# Their own protection, tested below: readiness says nothing secret; metrics need an address or a token.
PROBES = {"readyz", "metrics"}
# Login needed, no role: the home page, a list of links.
ANY_USER = {""}

# Example values for every URL parameter, naming objects that exist, so a missing check would answer 200.
EXAMPLES = {
    "slug": "wf", "number": "1", "node_id": "a", "name": "cred", "object_id": "1", "id": "1",
    "content_type_id": "1", "app_label": "auth", "url": "auth/user/", "schedule_id": "",
    "webhook_id": "6f9a3c0e-0000-4000-8000-000000000001", "endpoint_id": "6f9a3c0e-0000-4000-8000-000000000001",
    "trigger_id": "424242",
}
REFUSED = {401, 403, 405}


def url_patterns(patterns=None, prefix: str = ""):
    """(route, pattern) for every URL pattern, with nested includes flattened."""
    for pattern in patterns if patterns is not None else get_resolver().url_patterns:
        route = prefix + str(pattern.pattern)
        if isinstance(pattern, URLResolver):
            yield from url_patterns(pattern.url_patterns, route)
        elif isinstance(pattern, URLPattern):
            yield route, pattern


def concrete(route: str, run_id: str) -> str:
    """A path for the route: each <converter:name> or (?P<name>...) replaced by an example value."""
    def value(name: str) -> str:
        if name == "run_id":
            return run_id
        if name not in EXAMPLES:
            raise AssertionError(f"no example value for URL parameter {name!r} in {route!r}: add one to EXAMPLES")
        return EXAMPLES[name]

    path = re.sub(r"<(?:\w+:)?(\w+)>", lambda m: value(m.group(1)), route)
    path = re.sub(r"\(\?P<(\w+)>[^)]*\)", lambda m: value(m.group(1)), path)
    path = path.replace("^", "").replace("$", "")
    return "/" + path


def refused_or_sent_to_login(response) -> bool:
    if response.status_code in REFUSED:
        return True
    if response.status_code == 302:
        return response["Location"].split("?")[0] in ("/accounts/login/", "/admin/login/")
    return False


@pytest.fixture
def world(drain):
    workflow_save(definition=definition("wf", [node("a")], []))
    run, _ = run_start(workflow="wf", inputs={})
    drain()
    credential_create(name="cred", kind="api_key", secret="a-secret-value")
    EXAMPLES["schedule_id"] = str(schedule_create(workflow="wf", interval_s=3600).pk)
    # A webhook endpoint (its public URL answers an unsigned request with 401) and an event trigger.
    from engine.models import EventTrigger, WebhookEndpoint
    from engine.services.webhooks import webhook_create

    described, _ = webhook_create(workflow="wf")
    WebhookEndpoint.objects.filter(pk=described["id"]).update(id=EXAMPLES["webhook_id"])
    EventTrigger.objects.create(pk=int(EXAMPLES["trigger_id"]), workflow=run.workflow, name="x")
    return run


@pytest.mark.django_db
def test_every_url_pattern_refuses_anonymous_get_and_post(world):
    client = Client(raise_request_exception=False)
    checked = []
    for route, _ in url_patterns():
        if route in PUBLIC or route in PROBES:
            continue
        path = concrete(route, str(world.pk))
        for method in ("get", "post"):
            response = getattr(client, method)(path)
            assert response.status_code != 500, f"{method.upper()} {path} failed with 500"
            assert refused_or_sent_to_login(response), (
                f"anonymous {method.upper()} {path} answered {response.status_code}: {response.content[:200]!r}")
            checked.append(f"{method} {route}")
    # The walk really covered the API, the pages and the admin.
    assert any("api/runs/" in c for c in checked) and any(c.endswith(" runs/") for c in checked)
    assert any("admin/auth/user/" in c for c in checked)
    assert len(checked) > 150


@pytest.mark.django_db
def test_every_url_pattern_refuses_a_logged_in_user_without_a_role(world):
    from django.contrib.auth.models import User

    client = Client(raise_request_exception=False)
    client.force_login(User.objects.create_user("nobody"))
    for route, _ in url_patterns():
        if route in PUBLIC or route in PROBES or route in ANY_USER:
            continue
        path = concrete(route, str(world.pk))
        for method in ("get", "post"):
            response = getattr(client, method)(path)
            assert response.status_code != 500, f"{method.upper()} {path} failed with 500"
            assert refused_or_sent_to_login(response), (
                f"{method.upper()} {path} without a role answered {response.status_code}: {response.content[:200]!r}")


@pytest.mark.django_db
def test_public_pages_answer_without_data():
    client = Client()
    assert client.get("/accounts/login/").status_code == 200
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/admin/login/").status_code == 200


@pytest.mark.django_db
def test_readiness_tells_anonymous_callers_only_about_health():
    response = Client().get("/readyz")
    assert response.status_code in (200, 503)
    body = response.json()
    assert set(body) == {"status", "checks"} and set(body["checks"]) <= {"database", "migrations", "queues"}


@pytest.mark.django_db
def test_metrics_refuse_other_addresses_and_wrong_tokens(settings):
    settings.WEFT_METRICS_TOKEN = ""
    client = Client(REMOTE_ADDR="203.0.113.9")
    assert client.get("/metrics").status_code == 403
    settings.WEFT_METRICS_TOKEN = "metrics-token-1234"
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 401
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer metrics-token-1234").status_code == 200


@pytest.mark.django_db(transaction=True, databases=["default", "channels_postgres"])
def test_every_websocket_route_closes_anonymous_and_foreign_origin_connections(live_layer):
    from channels.testing import WebsocketCommunicator

    from config.asgi import application
    from webui.routing import websocket_urlpatterns

    workflow_save(definition=definition("ws", [node("a")], []))
    run, _ = run_start(workflow="ws", inputs={})
    paths = [concrete(str(p.pattern), str(run.pk)) for p in websocket_urlpatterns]
    assert len(paths) >= 2

    async def outcome(path: str, origin: bytes) -> tuple:
        comm = WebsocketCommunicator(application, path, headers=[(b"host", b"localhost"), (b"origin", origin)])
        connected, code = await comm.connect()
        if not connected:
            return ("rejected", code)
        first = await comm.receive_output(timeout=3)
        await comm.disconnect()
        return (first["type"], first.get("code"))

    async def scenario():
        for path in paths:
            # Anonymous: closed with 4401 before anything is sent.
            assert await outcome(path, b"http://localhost") == ("websocket.close", 4401), path
            # Another site's page: refused at the handshake.
            assert (await outcome(path, b"https://evil.example"))[0] == "rejected", path

    run_async(scenario)
