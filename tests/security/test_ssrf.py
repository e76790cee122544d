"""The outbound-HTTP guard against the address forms and redirect tricks SSRF attacks use, with a real
loopback server that must never see a refused request. (tests/unit/test_netguard.py and tests/nodes/test_http.py
cover the allow-list itself.)"""

from __future__ import annotations

import pytest

from engine.exceptions import GraphInvalid
from engine.integrations.netguard import HostNotAllowed, Policy, check_url_static, resolve_checked
from engine.models import StepRun
from engine.services.scheduler import run_start
from engine.services.workflows import workflow_save
from tests.conftest import definition
from tests.fakes.servers import ToolServer

PUBLIC_ONLY = Policy.from_entries(["*"])

# Loopback, link-local (cloud metadata) and private addresses written the ways resolvers accept.
DISGUISED = [
    "http://2130706433/",  # 127.0.0.1 as one decimal number
    "http://017700000001/",  # ... in octal
    "http://0x7f000001/",  # ... in hex
    "http://0x7f.0.0.1/", "http://0177.0.0.01/", "http://127.1/", "http://127.0.1/",  # short and mixed forms
    "http://0/", "http://0.0.0.0/", "http://[::]/",
    "http://2852039166/",  # 169.254.169.254
    "http://0xa9fea9fe/", "http://169.254.169.254./", "http://[::ffff:169.254.169.254]/",
    "http://167772161/",  # 10.0.0.1
    "http://[::ffff:127.0.0.1]/", "http://[::ffff:7f00:1]/", "http://[0:0:0:0:0:ffff:127.0.0.1]/",
    "http://[::127.0.0.1]/", "http://[64:ff9b::127.0.0.1]/", "http://[2002:7f00:1::1]/", "http://[fe80::1%25eth0]/",
    "http://[fd12:3456::1]/", "http://[::1]/", "http://localhost./", "http://LOCALHOST/", "http://a.b.localhost/",
    "http://user:pw@127.0.0.1/", "http://example.com@127.0.0.1/", "http://metadata.google.internal./",
]


@pytest.mark.parametrize("url", DISGUISED)
def test_disguised_internal_addresses_are_refused_before_any_request(url):
    assert check_url_static(url, PUBLIC_ONLY) is not None


@pytest.mark.parametrize("host", ["2130706433", "0x7f000001", "127.1", "0", "::ffff:127.0.0.1", "2002:7f00:1::1",
                                  "localhost", "169.254.169.254."])
def test_disguised_internal_addresses_are_refused_after_resolution(host):
    with pytest.raises(HostNotAllowed):
        resolve_checked(host, 80, PUBLIC_ONLY)


@pytest.mark.parametrize("url", ["http://134744072/", "http://[2002:808:808::1]/", "https://example.org/"])
def test_public_addresses_in_any_form_pass(url):
    assert check_url_static(url, PUBLIC_ONLY) is None


@pytest.fixture
def server():
    s = ToolServer().start()
    yield s
    s.stop()


def http_run(url: str, drain, slug: str = "ssrf") -> StepRun:
    node = {"id": "call", "type": "http", "retry": {"max_attempts": 1}, "config": {"url": "{{ inputs.url }}"}}
    workflow_save(definition=definition(slug, [node], []))
    run, _ = run_start(workflow=slug, inputs={"url": url})
    drain()
    return StepRun.objects.get(run=run)


@pytest.mark.django_db
@pytest.mark.parametrize("form", ["2130706433", "0x7f000001", "0x7f.0.0.1", "127.1", "[::ffff:127.0.0.1]"])
def test_a_templated_url_reaching_loopback_in_disguise_fails_the_step_and_sends_nothing(form, server, drain, settings):
    settings.WEFT_HTTP_ALLOWED_HOSTS = ["*"]
    port = server.httpd.server_address[1]
    step = http_run(f"http://{form}:{port}/json", drain)
    assert step.status == "failed" and "HostNotAllowed" in step.error, step.error
    assert server.requests == []


@pytest.mark.django_db
@pytest.mark.parametrize("target", [
    "http://169.254.169.254/latest/meta-data/iam/security-credentials/",
    "http://2852039166/latest/meta-data/",
    "http://127.0.0.2:{port}/json",  # loopback, but not the address that was allowed
    "http://[::1]:{port}/json",
    "http://10.0.0.1/",
    "file:///etc/passwd",
    "gopher://127.0.0.1:{port}/_GET",
])
def test_every_redirect_hop_is_checked(target, server, drain, settings):
    settings.WEFT_HTTP_ALLOWED_HOSTS = ["*", "127.0.0.1/32"]
    port = server.httpd.server_address[1]
    target = target.format(port=port)
    # Two hops on the allowed server, then the refused one.
    second = f"http://127.0.0.1:{port}/redirect?to={target}"
    step = http_run(f"http://127.0.0.1:{port}/redirect?to={second}", drain)
    assert step.status == "failed" and "HostNotAllowed" in step.error, step.error
    assert [r["path"] for r in server.requests] == ["/redirect", "/redirect"]


@pytest.mark.django_db
def test_credentials_are_not_forwarded_across_origins_on_redirect(server, drain, settings):
    from engine.integrations.credentials import credential_create

    settings.WEFT_HTTP_ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
    credential_create(name="svc", kind="bearer", secret="tok-not-for-other-hosts", allowed_hosts=["127.0.0.1"])
    port = server.httpd.server_address[1]
    node = {"id": "call", "type": "http", "config": {
        "url": f"http://127.0.0.1:{port}/redirect?to=http://localhost:{port}/echo", "credential": "svc"}}
    workflow_save(definition=definition("fwd", [node], []))
    run, _ = run_start(workflow="fwd", inputs={})
    drain()
    step = StepRun.objects.get(run=run)
    assert step.status == "succeeded", step.error
    first, second = server.requests
    assert first["headers"]["authorization"] == "Bearer tok-not-for-other-hosts"
    assert "authorization" not in second["headers"]


@pytest.mark.django_db
@pytest.mark.parametrize("url", ["http://2130706433/", "http://[::ffff:169.254.169.254]/", "http://0x7f.1/"])
def test_disguised_literal_urls_are_refused_when_the_workflow_is_saved(url):
    node = {"id": "call", "type": "http", "config": {"url": url}}
    with pytest.raises(GraphInvalid) as err:
        workflow_save(definition=definition("literal", [node], []))
    assert err.value.errors[0].node == "call"
