"""A designer cannot read a credential back: a credential goes only to the hosts on its allowed_hosts
(checked when a workflow is saved and again when each request is sent), one without a list goes nowhere,
and naming a credential in a workflow needs the credential_user role, not only designer. A real loopback
server sees every request."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group, User
from rest_framework.test import APIClient

from engine.exceptions import GraphInvalid
from engine.integrations.credentials import credential_create, credential_update
from engine.models import Attempt, StepRun, Workflow
from engine.services.scheduler import run_start
from engine.services.workflows import workflow_save
from tests.conftest import definition
from tests.fakes.servers import ToolServer

pytestmark = pytest.mark.django_db

SECRET = "tok-partner-6a0f3e91c2"
RETRIES = {"max_attempts": 3, "backoff_s": 0, "jitter": 0}


@pytest.fixture
def server(settings):
    settings.WEFT_HTTP_ALLOWED_HOSTS = ["127.0.0.1", "localhost"]  # the SSRF guard lets both through
    s = ToolServer().start()
    yield s
    s.stop()


@pytest.fixture
def partner():
    """A credential someone else stored, for the partner API on 127.0.0.1."""
    credential_create(name="partner", kind="bearer", secret=SECRET, allowed_hosts=["127.0.0.1"])


def client_with(*groups: str) -> APIClient:
    user = User.objects.create_user("u-" + "-".join(groups))
    for name in groups:
        user.groups.add(Group.objects.get_or_create(name=name)[0])  # the migrations made them; a flush empties them
    client = APIClient()
    client.force_authenticate(user)
    return client


def http_node(url: str, credential: str = "partner") -> dict:
    return {"id": "call", "type": "http", "retry": RETRIES, "config": {"url": url, "credential": credential}}


def saved(client: APIClient, nodes: list[dict], slug: str = "steal"):
    return client.post("/api/workflows/", {"definition": definition(slug, nodes, [],
                                                                    inputs={"type": "object"})}, format="json")


def refusal(response, status: int = 400) -> dict:
    assert response.status_code == status, response.content
    return response.json()["error"]


def run_of(slug: str, drain, inputs=None) -> StepRun:
    run, _ = run_start(workflow=slug, inputs=inputs or {})
    drain()
    return StepRun.objects.get(run=run)


def test_a_designer_without_the_credential_user_role_cannot_save_a_workflow_naming_a_credential(server, partner):
    designer = client_with("designer")
    error = refusal(saved(designer, [http_node(f"{server.url}/echo")]))
    assert error["code"] == "graph_invalid"
    [issue] = error["details"]
    assert issue["path"] == "nodes[0].config.credential"
    assert "`partner`" in issue["message"] and "credential_user" in issue["message"]
    assert not Workflow.objects.filter(slug="steal").exists()
    checked = designer.post("/api/workflows/validate/", {"definition": definition("steal", [
        http_node(f"{server.url}/echo")], [])}, format="json").json()
    assert checked["valid"] is False and "credential_user" in checked["errors"][0]["message"]

    user = client_with("designer", "credential_user")
    assert saved(user, [http_node(f"{server.url}/echo")]).status_code == 201
    superuser = APIClient()
    superuser.force_authenticate(User.objects.create_superuser("root-user"))
    assert saved(superuser, [http_node(f"{server.url}/echo")], slug="root").status_code == 201
    assert server.requests == []


def test_a_literal_url_off_the_credentials_hosts_is_refused_when_saved(server, partner):
    user = client_with("designer", "credential_user")
    elsewhere = f"http://localhost:{server.httpd.server_address[1]}/echo"  # the designer's own host
    error = refusal(saved(user, [http_node(elsewhere)]))
    [issue] = error["details"]
    assert issue["path"] == "nodes[0].config.credential"
    assert "`partner`" in issue["message"] and "`localhost`" in issue["message"]
    assert "allowed_hosts" in issue["message"]
    llm = {"id": "ask", "type": "llm", "config": {"base_url": f"http://localhost:{server.httpd.server_address[1]}/v1",
                                                 "credential": "partner", "prompt": "hi"}}
    tool = {"id": "agent", "type": "agent", "config": {
        "base_url": f"{server.url}/v1", "credential": "partner", "prompt": "go",
        "tools": [{"name": "leak", "type": "http", "url": elsewhere, "credential": "partner"}]}}
    error = refusal(saved(user, [llm, tool]))
    assert sorted(i["path"] for i in error["details"]) == ["nodes[0].config.credential",
                                                           "nodes[1].config.tools[0].credential"]
    assert server.requests == []


def test_a_templated_url_off_the_credentials_hosts_fails_the_step_once_and_sends_nothing(server, partner, drain):
    user = client_with("designer", "credential_user")
    assert saved(user, [http_node("{{ inputs.url }}")]).status_code == 201
    elsewhere = f"http://localhost:{server.httpd.server_address[1]}/echo"
    step = run_of("steal", drain, {"url": elsewhere})
    assert step.status == "failed"
    assert "HostNotAllowed" in step.error and "`partner`" in step.error and "allowed_hosts" in step.error
    assert Attempt.objects.filter(step=step).count() == 1, "a refused host is not retried"
    assert server.requests == []
    step = run_of("steal", drain, {"url": f"{server.url}/echo"})
    assert step.status == "succeeded"
    assert [r["headers"]["authorization"] for r in server.requests] == [f"Bearer {SECRET}"]


def test_a_credential_without_allowed_hosts_is_refused_at_save_and_at_run(server, drain):
    credential_create(name="legacy", kind="header", secret=f"X-Api-Key: {SECRET}")  # as migrated: no list
    with pytest.raises(GraphInvalid) as err:
        workflow_save(definition=definition("old", [http_node(f"{server.url}/echo", "legacy")], []))
    [issue] = err.value.errors
    assert issue.path == "nodes[0].config.credential"
    assert issue.message == ("node `call`: `credential`: credential `legacy` has no allowed hosts, so it may not be "
                             "sent anywhere: set the hosts it may be sent to (its `allowed_hosts`)")

    credential_update(name="legacy", allowed_hosts=["127.0.0.1"])
    workflow_save(definition=definition("old", [http_node(f"{server.url}/echo", "legacy")], []))
    credential_update(name="legacy", allowed_hosts=[])  # emptied after the workflow was saved
    step = run_of("old", drain)
    assert step.status == "failed"
    assert "HostNotAllowed" in step.error and "credential `legacy` has no allowed hosts" in step.error
    assert Attempt.objects.filter(step=step).count() == 1
    assert server.requests == []


@pytest.mark.parametrize("allowed, host, sent", [
    (["api.partner.example"], "api.partner.example", True),
    (["api.partner.example"], "API.Partner.Example", True),
    (["api.partner.example"], "evil.example", False),
    (["api.partner.example"], "api.partner.example.evil.example", False),
    (["*.partner.example"], "eu.api.partner.example", True),
    (["*.partner.example"], "partner.example.evil.example", False),
    (["10.0.0.0/8"], "10.1.2.3", True),
    (["10.0.0.0/8"], "11.1.2.3", False),
    (["127.0.0.1"], "127.0.0.1", True),
    (["127.0.0.1"], "localhost", False),
    (["::1"], "::1", True),
    (["*"], "api.partner.example", True),
    (["*"], "169.254.169.254", False),
    ([], "api.partner.example", False),
])
def test_a_credentials_hosts_are_read_like_the_ssrf_allow_list(allowed, host, sent):
    from engine.integrations.netguard import credential_host_refusal

    refusal = credential_host_refusal("partner", allowed, host)
    assert (refusal is None) == sent, refusal
    if not sent:
        assert "`partner`" in refusal and "allowed_hosts" in refusal


@pytest.mark.parametrize("entry", ["https://api.example.org", "api.example.org:443", "api.example.org/v1", "",
                                   " ", "a b.example", "*.", "**.example.org", 7, None])
def test_an_entry_the_allow_list_cannot_read_is_refused(entry):
    from engine.integrations.credentials import CredentialInvalid

    with pytest.raises(CredentialInvalid) as err:
        credential_create(name="partner", kind="bearer", secret=SECRET, allowed_hosts=[entry])
    assert err.value.details == [{"field": "allowed_hosts"}]
