"""The http node against a real loopback server: idempotency keys, retries, Retry-After, size cap, SSRF guard."""

from __future__ import annotations

import pytest

from engine.exceptions import GraphInvalid
from engine.integrations.credentials import credential_create
from engine.models import Attempt, Event, StepRun
from engine.services.scheduler import run_start
from engine.services.workflows import workflow_save
from tests.conftest import definition

pytestmark = pytest.mark.django_db

SECRET = "tok-93b1f0c2a7d4e8"
FAST_RETRY = {"max_attempts": 3, "backoff_s": 0, "jitter": 0}


def http_node(id="call", retry=None, **config) -> dict:
    node = {"id": id, "type": "http", "config": config}
    if retry:
        node["retry"] = retry
    return node


def run_one(node: dict, drain, inputs=None, slug="http1"):
    d = definition(slug, [node], [], inputs={"type": "object"})
    wf = workflow_save(definition=d)[0]
    run, _ = run_start(workflow=wf, inputs=inputs or {})
    drain()
    run.refresh_from_db()
    return run, StepRun.objects.get(run=run, node_id=node["id"])


def test_get_returns_status_headers_and_parsed_json(allow_loopback, tool_server, drain):
    run, step = run_one(http_node(url=tool_server.url + "/json"), drain)
    assert run.status == "succeeded"
    assert step.output["status"] == 200
    assert step.output["body"] == {"hello": "world", "items": [1, 2, 3]}
    assert step.output["headers"]["content-type"] == "application/json"


def test_text_body_is_returned_as_text(allow_loopback, tool_server, drain):
    _, step = run_one(http_node(url=tool_server.url + "/text"), drain)
    assert step.output["body"] == "plain text"


def test_post_sends_the_same_idempotency_key_on_every_retry(allow_loopback, tool_server, drain):
    tool_server.fail_effect_requests = {1}
    node = http_node(method="POST", url=tool_server.url + "/effect", json={"order": "{{ inputs.order }}"},
                     retry=FAST_RETRY)
    run, step = run_one(node, drain, inputs={"order": 42})
    assert run.status == "succeeded"
    effect_requests = [r for r in tool_server.requests if r["path"] == "/effect"]
    keys = [r["headers"]["idempotency-key"] for r in effect_requests]
    assert len(keys) == 2 and keys[0] == keys[1] and keys[0].startswith("weft-")
    assert effect_requests[1]["body"] == {"order": 42}
    assert sum(tool_server.effects.values()) == 1
    assert list(Attempt.objects.filter(step=step).values_list("outcome", flat=True)) == ["failed", "succeeded"]
    assert "HttpRetryable" in Attempt.objects.get(step=step, number=1).error


def test_send_idempotency_key_false_sends_none(allow_loopback, tool_server, drain):
    run_one(http_node(method="PUT", url=tool_server.url + "/echo", send_idempotency_key=False), drain)
    assert "idempotency-key" not in tool_server.requests[-1]["headers"]


def test_retry_after_is_waited_out_within_the_attempt(allow_loopback, tool_server, drain):
    tool_server.fail_next = [(429, {"Retry-After": "1"})]
    run, step = run_one(http_node(method="POST", url=tool_server.url + "/effect", json={}), drain)
    assert run.status == "succeeded"
    assert Attempt.objects.filter(step=step).count() == 1
    keys = {r["headers"]["idempotency-key"] for r in tool_server.requests}
    assert len(tool_server.requests) == 2 and len(keys) == 1


def test_retry_after_beyond_the_limit_fails_the_attempt_as_retryable(allow_loopback, tool_server, drain):
    tool_server.fail_next = [(503, {"Retry-After": "120"})]
    node = http_node(url=tool_server.url + "/json", max_retry_after_s=5, retry={"max_attempts": 1})
    run, step = run_one(node, drain)
    assert run.status == "failed" and step.status == "failed"
    assert "HttpRetryable" in step.error and "retry after 120" in step.error


def test_client_error_fails_unless_fail_on_status_is_false(allow_loopback, tool_server, drain):
    run, step = run_one(http_node(url=tool_server.url + "/status/404", retry={"max_attempts": 1}), drain)
    assert step.status == "failed" and "HttpClientError" in step.error and "404" in step.error
    run, step = run_one(http_node(url=tool_server.url + "/status/404", fail_on_status=False), drain, slug="http2")
    assert step.status == "succeeded" and step.output["status"] == 404


def test_body_over_the_cap_fails_the_step(allow_loopback, tool_server, drain):
    node = http_node(url=tool_server.url + "/big?bytes=5000", max_body_bytes=1000, retry={"max_attempts": 1})
    run, step = run_one(node, drain)
    assert step.status == "failed"
    assert "ResponseTooLarge" in step.error and "1000" in step.error


def test_loopback_is_refused_at_run_time_when_not_allowed(tool_server, drain):
    node = http_node(url="{{ inputs.url }}", retry={"max_attempts": 1})
    run, step = run_one(node, drain, inputs={"url": tool_server.url + "/json"})
    assert step.status == "failed"
    assert "HostNotAllowed" in step.error and "loopback" in step.error
    assert tool_server.requests == []


def test_literal_loopback_url_is_refused_at_validation():
    d = definition("ssrf", [http_node(url="http://127.0.0.1:9/admin")], [])
    with pytest.raises(GraphInvalid) as err:
        workflow_save(definition=d)
    issue = err.value.errors[0]
    assert issue.node == "call" and issue.path == "nodes[0].config.url"
    assert "loopback" in issue.message


@pytest.mark.parametrize("url", ["http://169.254.169.254/latest/meta-data/", "http://10.0.0.5/", "http://localhost/",
                                 "http://[::1]/", "file:///etc/passwd"])
def test_private_link_local_and_odd_schemes_are_refused_at_validation(url):
    with pytest.raises(GraphInvalid) as err:
        workflow_save(definition=definition("ssrf2", [http_node(url=url)], []))
    assert err.value.errors[0].node == "call"


def test_redirect_to_a_refused_address_is_refused(settings, tool_server, drain):
    port = tool_server.httpd.server_address[1]
    settings.WEFT_HTTP_ALLOWED_HOSTS = ["localhost"]  # the name is allowed; 127.0.0.1 by address is not
    target = f"http://127.0.0.1:{port}/json"
    node = http_node(url=f"http://localhost:{port}/redirect?to={target}", retry={"max_attempts": 1})
    run, step = run_one(node, drain)
    assert step.status == "failed" and "HostNotAllowed" in step.error
    assert [r["path"] for r in tool_server.requests] == ["/redirect"]


def test_redirects_are_followed_when_every_hop_is_allowed(allow_loopback, tool_server, drain):
    node = http_node(url=f"{tool_server.url}/redirect?to={tool_server.url}/json")
    _, step = run_one(node, drain)
    assert step.output["body"]["hello"] == "world" and step.output["url"].endswith("/json")


def test_credential_is_sent_and_kept_out_of_events_logs_and_errors(allow_loopback, tool_server, drain):
    credential_create(name="svc", kind="bearer", secret=SECRET, allowed_hosts=["127.0.0.1"])
    tool_server.fail_effect_requests = {1}  # its error body echoes the Authorization header
    node = http_node(method="POST", url=tool_server.url + "/effect", json={}, credential="svc", retry=FAST_RETRY)
    run, step = run_one(node, drain)
    assert run.status == "succeeded"
    assert {r["headers"]["authorization"] for r in tool_server.requests} == {f"Bearer {SECRET}"}
    first = Attempt.objects.get(step=step, number=1)
    assert "***" in first.error and SECRET not in first.error + first.traceback + str(first.logs)
    assert SECRET not in str(list(Event.objects.filter(run=run).values_list("payload", flat=True)))
    assert SECRET not in str(step.output) + str(run.outputs)


def test_a_secret_echoed_by_the_server_is_redacted_from_the_output(allow_loopback, tool_server, drain):
    credential_create(name="svc", kind="bearer", secret=SECRET, allowed_hosts=["127.0.0.1"])
    run, step = run_one(http_node(method="POST", url=tool_server.url + "/echo", json={}, credential="svc"), drain)
    assert step.output["body"]["headers"]["authorization"] == "Bearer ***"
    assert SECRET not in str(step.output)


def test_server_error_without_retry_after_is_retried_by_the_engine(allow_loopback, tool_server, drain):
    tool_server.fail_next = [(500, {})]
    run, step = run_one(http_node(url=tool_server.url + "/json", retry=FAST_RETRY), drain)
    assert run.status == "succeeded" and step.output["status"] == 200
    attempts = list(Attempt.objects.filter(step=step).order_by("number").values_list("outcome", "error"))
    assert [outcome for outcome, _ in attempts] == ["failed", "succeeded"]
    assert "HttpRetryable" in attempts[0][1] and "500" in attempts[0][1]


def test_connection_error_is_retryable(allow_loopback, drain):
    import socket

    with socket.socket() as sock:  # a loopback port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    run, step = run_one(http_node(url=f"http://127.0.0.1:{port}/", retry={**FAST_RETRY, "max_attempts": 2}), drain)
    assert run.status == "failed"
    errors = list(Attempt.objects.filter(step=step).order_by("number").values_list("error", flat=True))
    assert len(errors) == 2, "a refused connection must be retried under the node's policy"
    assert all("HttpRetryable" in e and "ConnectError" in e for e in errors)
