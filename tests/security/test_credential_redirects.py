"""A credential never follows a redirect out of its origin: whatever header its kind sets (Authorization,
or a header of its own such as X-Api-Key), a redirect to another host or another port arrives without it.
Real loopback servers see every request."""

from __future__ import annotations

import base64

import pytest

from engine.integrations.credentials import credential_create
from engine.models import StepRun
from engine.services.scheduler import run_start
from engine.services.workflows import workflow_save
from tests.conftest import definition
from tests.fakes.servers import ToolServer

pytestmark = pytest.mark.django_db

# kind -> (secret as stored, header it is sent in, the header's value)
KINDS = {
    "api_key": ("sk-redirect-5d2c81", "authorization", "Bearer sk-redirect-5d2c81"),
    "bearer": ("tok-redirect-90ae4f", "authorization", "Bearer tok-redirect-90ae4f"),
    "basic": ("svc:pw-redirect-3b71", "authorization", "Basic " + base64.b64encode(b"svc:pw-redirect-3b71").decode()),
    "header": ("X-Api-Key: key-redirect-c4e2", "x-api-key", "key-redirect-c4e2"),
}


@pytest.fixture
def origin():
    s = ToolServer().start()
    yield s
    s.stop()


@pytest.fixture
def elsewhere():
    s = ToolServer().start()
    yield s
    s.stop()


def redirect_target(where: str, origin: ToolServer, elsewhere: ToolServer) -> tuple[str, ToolServer]:
    """Where the origin's redirect points, and the server that answers there."""
    if where == "another host":  # same port, another host name
        return f"http://localhost:{origin.httpd.server_address[1]}/echo", origin
    return f"{elsewhere.url}/echo", elsewhere  # same host, another port


@pytest.mark.parametrize("where", ["another host", "another port"])
@pytest.mark.parametrize("kind", sorted(KINDS))
def test_a_redirect_out_of_the_origin_arrives_without_the_credentials_header(kind, where, origin, elsewhere, drain,
                                                                             settings):
    settings.WEFT_HTTP_ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
    secret, header, value = KINDS[kind]
    credential_create(name="svc", kind=kind, secret=secret, allowed_hosts=["127.0.0.1", "localhost"])
    target, answering = redirect_target(where, origin, elsewhere)
    node = {"id": "call", "type": "http", "retry": {"max_attempts": 1}, "config": {
        "method": "POST", "url": f"{origin.url}/redirect?to={target}", "json": {}, "credential": "svc"}}
    workflow_save(definition=definition("fwd", [node], []))
    run, _ = run_start(workflow="fwd", inputs={})
    drain()
    step = StepRun.objects.get(run=run)
    assert step.status == "succeeded", step.error
    first, second = origin.requests[0], answering.requests[-1]
    assert first["path"] == "/redirect" and second["path"] == "/echo"
    assert first["headers"][header] == value
    assert header not in second["headers"], f"{where} received the {kind} credential's {header}"


def test_a_redirect_within_the_origin_keeps_the_credential(origin, drain, settings):
    settings.WEFT_HTTP_ALLOWED_HOSTS = ["127.0.0.1"]
    credential_create(name="svc", kind="header", secret="X-Api-Key: key-same-origin-77",
                      allowed_hosts=["127.0.0.1"])
    node = {"id": "call", "type": "http", "retry": {"max_attempts": 1}, "config": {
        "url": f"{origin.url}/redirect?to={origin.url}/echo", "credential": "svc"}}
    workflow_save(definition=definition("same", [node], []))
    run, _ = run_start(workflow="same", inputs={})
    drain()
    assert StepRun.objects.get(run=run).status == "succeeded"
    assert [r["headers"].get("x-api-key") for r in origin.requests] == ["key-same-origin-77"] * 2
