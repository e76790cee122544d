"""The checks that read the database when a definition is saved (templates, credentials, hosts, limits) word their
messages as the schema checks do: "node `fetch`: ..." with names as code, no Python reprs, no internal JSON paths
(those stay in the issue's ``path``)."""

from __future__ import annotations

import re

import pytest

from engine.exceptions import GraphInvalid
from engine.integrations.credentials import credential_create
from engine.services.workflows import graph_validate, workflow_save
from tests.conftest import definition, node

pytestmark = pytest.mark.django_db


def messages(d, **kwargs) -> list[tuple[str, str]]:
    with pytest.raises(GraphInvalid) as err:
        graph_validate(d, **kwargs)
    issues = err.value.errors
    for issue in issues:
        assert not re.search(r"'[^']*'", issue.message.split(": ", 1)[0]), issue.message  # no repr in the lead
        assert "nodes[" not in issue.message and "edges[" not in issue.message, issue.message
    return [(i.path, i.message) for i in issues]


def test_template_reference_and_syntax_messages():
    nodes = [node("a", kwargs={"x": "{{ nodes.ghost.output }}", "me": "{{ nodes.a.output }}"}),
             {"id": "t", "type": "transform", "config": {"template": {"v": "{{ inputs.x + }}"}}},
             node("b"), node("c", kwargs={"y": "{{ nodes.b.output }}"})]
    got = messages(definition("tpl", nodes, [("a", "t"), ("a", "c"), ("a", "b")]))
    assert ("nodes[0].config.kwargs.x", "node `a`: `kwargs.x` refers to node `ghost`, which does not exist") in got
    assert ("nodes[0].config.kwargs.me", "node `a`: `kwargs.me` refers to node `a`, which is the node itself") in got
    assert ("nodes[1].config.template.v", "node `t`: the template in `template.v` does not parse: unexpected "
                                          "'end of print statement' (line 1)") in got
    assert ("nodes[3].config.kwargs.y", "node `c`: `kwargs.y` refers to node `b`, which is not upstream of it (no "
                                        "path of edges leads from it to this node)") in got


def test_map_message():
    mapped = node("each", for_each="not a template")
    got = messages(definition("map", [mapped], []))
    assert ("nodes[0].for_each", "node `each`: `for_each` must be a template that yields a list, e.g. "
                                 "`{{ nodes.search.output.urls }}`") in got


def test_credential_messages(django_user_model):
    llm = {"id": "ask", "type": "llm", "config": {"prompt": "hi", "credential": "nope"}}
    assert messages(definition("cred", [llm], [])) == [
        ("nodes[0].config.credential", "node `ask`: `credential`: credential `nope` does not exist (create it on the "
                                       "Credentials page first; secrets never go in definitions)")]
    designer = django_user_model.objects.create(username="d")
    assert messages(definition("cred", [llm], []), actor=designer) == [
        ("nodes[0].config.credential", "node `ask`: `credential`: credential `nope`: naming a credential in a "
                                       "workflow needs the `credential_user` role, which you do not have")]
    credential_create(name="partner", kind="bearer", secret="sk-123456", allowed_hosts=["api.partner.test"])
    credential_create(name="nowhere", kind="bearer", secret="sk-123456", allowed_hosts=[])
    call = {"id": "call", "type": "http", "config": {"url": "https://other.test/x", "credential": "partner"}}
    assert messages(definition("host", [call], [])) == [
        ("nodes[0].config.credential", "node `call`: `credential`: credential `partner` may not be sent to host "
                                       "`other.test`: it is not in the credential's `allowed_hosts` "
                                       "(`api.partner.test`)")]
    call["config"]["credential"] = "nowhere"
    assert messages(definition("host", [call], [])) == [
        ("nodes[0].config.credential", "node `call`: `credential`: credential `nowhere` has no allowed hosts, so it "
                                       "may not be sent anywhere: set the hosts it may be sent to (its "
                                       "`allowed_hosts`)")]


def test_host_messages(settings):
    settings.WEFT_HTTP_ALLOWED_HOSTS = ["api.partner.test"]
    calls = [{"id": "h1", "type": "http", "config": {"url": "https://evil.test/x"}},
             {"id": "h2", "type": "http", "config": {"url": "http://127.0.0.1/"}},
             {"id": "h3", "type": "http", "config": {"url": "ftp://api.partner.test/"}}]
    assert messages(definition("hosts", calls, [])) == [
        ("nodes[0].config.url", "node `h1`: `url`: host `evil.test` is not in WEFT_HTTP_ALLOWED_HOSTS"),
        ("nodes[1].config.url", "node `h2`: `url`: host `127.0.0.1` is a loopback address, which "
                                "WEFT_HTTP_ALLOWED_HOSTS does not allow"),
        ("nodes[2].config.url", "node `h3`: `url`: URL scheme `ftp` is not allowed; use http or https")]


def test_limit_messages():
    n = node("a", limits=[{"name": "partner", "key": "{{ inputs.x + }}"}])
    assert messages(definition("lim", [n], [])) == [
        ("nodes[0].limits[0].name", "node `a`: limit `partner` does not exist; create it on the Limits page first"),
        ("nodes[0].limits[0].key", "node `a`: the key of limit `partner`: template syntax error: unexpected "
                                   "'end of print statement' (line 1)")]


def test_graph_messages_name_nodes_as_code(settings):
    nodes = [node("a"), node("a"), {"id": "x", "type": "nosuch"}, node("q", queue="nowhere"),
             node("m", max_parallel=2)]
    got = messages(definition("graph", nodes, [("q", "q")]))
    text = "\n".join(m for _, m in got)
    assert "node `a`: two nodes have this id (nodes number 1 and 2); give each its own" in text
    assert "node `x`: `nosuch` is not a known node type (known types: `agent`," in text
    assert "node `q`: queue `nowhere` is not configured (queues: `default`," in text
    assert "node `m`: `max_parallel` applies to a mapped node only; give the node `for_each` too" in text
    assert "edge q->q connects node `q` to itself" in text


def test_reserved_slug_message():
    with pytest.raises(GraphInvalid) as err:
        workflow_save(definition=definition("validate", [node("a")], []))
    assert err.value.errors[0].message == "slug `validate` is reserved; choose another"
