"""A planted secret never comes back out: not in API responses, pages, events, logs, tracebacks, exports,
the database or the websocket stream, even when the server a node calls echoes it back, in an error and
in a success."""

from __future__ import annotations

import base64
import json
import logging

import pytest
from channels.testing import WebsocketCommunicator
from django.db import connection
from django.test import Client

from config.asgi import application
from engine.integrations.credentials import credential_create
from engine.models import Run
from engine.services.scheduler import run_start
from engine.services.workflows import workflow_save
from tests.api.conftest import client_for
from tests.conftest import definition, node
from tests.fakes.servers import _Server
from tests.webui.conftest import make_user, run_async

pytestmark = pytest.mark.django_db(transaction=True, databases=["default", "channels_postgres"])

BEARER = "wsec-PLANTED-bearer-5f9d1c2e8b7a4036"
BASIC = "svc-user:wsec-PLANTED-basic-8e41b2"
HEADER_VALUE = "wsec-PLANTED-header-c07a9d"
LLM_KEY = "sk-wsec-PLANTED-llm-2b6f0e91"
FAST_RETRY = {"max_attempts": 3, "backoff_s": 0, "jitter": 0}
HOSTS = ["127.0.0.1"]  # where the echo server listens


def forms(secret: str) -> list[str]:
    """The secret as a client could send it: plain, and base64 (HTTP basic authentication)."""
    return [secret, base64.b64encode(secret.encode()).decode()]


PLANTED = [form for secret in (BEARER, BASIC, HEADER_VALUE, LLM_KEY) for form in forms(secret)]


class EchoServer(_Server):
    """Answers every first request on a path with 500, then 200; both answers echo the request's
    headers in the body and the Authorization header in a response header. /v1/chat/completions
    answers as a chat model whose reply repeats the headers it was sent."""

    def __init__(self):
        super().__init__()
        self.seen: set[str] = set()

    def handle(self, record):
        headers = record["headers"]
        echo = {"X-Echo-Authorization": headers.get("authorization", ""), "X-Echo-Key": headers.get("x-api-key", "")}
        with self.lock:
            first = record["path"] not in self.seen
            self.seen.add(record["path"])
        if first:
            return 500, echo, {"error": "simulated outage", "you_sent": headers}
        if record["path"].endswith("/chat/completions"):
            reply = {"role": "assistant", "content": f"you sent me {json.dumps(headers)}"}
            return 200, echo, {"id": "x", "object": "chat.completion", "model": "gpt-4o-mini",
                               "choices": [{"index": 0, "message": reply, "finish_reason": "stop"}],
                               "usage": {"prompt_tokens": 5, "completion_tokens": 5, "total_tokens": 10}}
        return 200, echo, {"you_sent": headers}


@pytest.fixture
def echo_server(settings):
    settings.WEFT_HTTP_ALLOWED_HOSTS = ["*", "127.0.0.1"]
    server = EchoServer().start()
    yield server
    server.stop()


def http_call(id: str, url: str, credential: str) -> dict:
    return {"id": id, "type": "http", "retry": FAST_RETRY,
            "config": {"method": "POST", "url": url, "json": {"from": id}, "credential": credential}}


def planted_run(server, drain) -> Run:
    credential_create(name="planted-bearer", kind="bearer", secret=BEARER, allowed_hosts=HOSTS)
    credential_create(name="planted-basic", kind="basic", secret=BASIC, allowed_hosts=HOSTS)
    credential_create(name="planted-header", kind="header", secret=f"X-Api-Key: {HEADER_VALUE}", allowed_hosts=HOSTS)
    credential_create(name="planted-llm", kind="api_key", secret=LLM_KEY, allowed_hosts=HOSTS)
    nodes = [
        http_call("bearer", f"{server.url}/bearer", "planted-bearer"),
        http_call("basic", f"{server.url}/basic", "planted-basic"),
        http_call("header", f"{server.url}/header", "planted-header"),
        {"id": "ask", "type": "llm", "retry": FAST_RETRY,
         "config": {"base_url": server.url + "/v1", "credential": "planted-llm", "prompt": "hello"}},
        # Logs and prints what the calls returned, as a workflow author might.
        node("report", "tests.noop", kwargs={"seen": "{{ nodes.bearer.output }} {{ nodes.ask.output }}"}),
    ]
    edges = [("bearer", "report"), ("basic", "report"), ("header", "report"), ("ask", "report")]
    workflow_save(definition=definition("secrets", nodes, edges))
    run, _ = run_start(workflow="secrets", inputs={})
    drain()
    run.refresh_from_db()
    return run


def leaks(text: str) -> list[str]:
    return [form for form in PLANTED if form in text]


def database_leaks() -> list[str]:
    """Every table whose rows, as text, contain a planted secret (credentials are stored encrypted)."""
    found = []
    with connection.cursor() as cur:
        for table in connection.introspection.table_names():
            for form in PLANTED:
                cur.execute(f'SELECT count(*) FROM "{table}" t WHERE t::text LIKE %s', [f"%{form}%"])
                if cur.fetchone()[0]:
                    found.append(f"{table}: {form}")
    return found


def api_paths(run: Run) -> list[str]:
    base = f"/api/runs/{run.pk}"
    paths = [base + "/", base + "/events/?limit=1000", base + "/timeline/", base + "/logs/?limit=5000",
             "/api/runs/", "/api/workflows/", "/api/workflows/secrets/", "/api/workflows/secrets/versions/",
             "/api/workflows/secrets/versions/1/", "/api/workflows/secrets/export/",
             "/api/workflows/secrets/analytics/", "/api/credentials/", "/api/credentials/planted-bearer/",
             "/api/credentials/planted-basic/"]
    paths += [f"{base}/steps/{n}/" for n in ("bearer", "basic", "header", "ask", "report")]
    return paths


def test_a_planted_secret_appears_in_no_response_event_log_traceback_export_row_or_socket(echo_server, drain,
                                                                                          caplog, live_layer):
    caplog.set_level(logging.DEBUG)
    run = planted_run(echo_server, drain)

    # The secrets really were sent, and really were echoed back (so the scans below can find them).
    sent = {r["headers"].get("authorization") or r["headers"].get("x-api-key") for r in echo_server.requests}
    assert {f"Bearer {BEARER}", "Basic " + forms(BASIC)[1], HEADER_VALUE, f"Bearer {LLM_KEY}"} <= sent
    assert run.status == "succeeded", list(run.steps.values_list("node_id", "status", "error"))
    assert all(s.attempt == 2 for s in run.steps.exclude(node_id="report")), "every call failed once, then passed"

    api = client_for("designer")
    for path in api_paths(run):
        response = api.get(path)
        assert response.status_code == 200, (path, response.content[:300])
        assert leaks(response.content.decode()) == [], path

    pages = Client()
    pages.force_login(make_user("page-viewer", "viewer"))
    for path in (f"/runs/{run.pk}/", f"/runs/{run.pk}/steps/bearer/", "/runs/", "/workflows/secrets/edit/"):
        response = pages.get(path)
        assert response.status_code == 200, path
        assert leaks(response.content.decode()) == [], path

    assert database_leaks() == []

    logged = "\n".join(r.getMessage() + (logging.Formatter().formatException(r.exc_info) if r.exc_info else "")
                       for r in caplog.records)
    assert caplog.records, "the run logged nothing at all"
    assert leaks(logged) == []

    viewer = make_user("socket-viewer", "viewer")
    client = Client()
    client.force_login(viewer)
    cookie = client.cookies["sessionid"].value

    async def snapshot():
        comm = WebsocketCommunicator(application, f"/ws/runs/{run.pk}/",
                                     headers=[(b"host", b"localhost"), (b"origin", b"http://localhost"),
                                              (b"cookie", f"sessionid={cookie}".encode())])
        connected, _ = await comm.connect()
        assert connected
        message = await comm.receive_json_from(timeout=5)
        await comm.disconnect()
        return message

    message = []
    run_async(lambda: _collect(snapshot, message))
    assert message[0]["type"] == "snapshot" and message[0]["run"]["status"] == "succeeded"
    assert leaks(json.dumps(message[0])) == []


async def _collect(coro_fn, into: list) -> None:
    into.append(await coro_fn())
