"""Lone UTF-16 surrogates (U+D800-DFFF): JSON allows them as escapes, PostgreSQL refuses them in jsonb and
text. They are refused at the API, a step whose output holds one fails itself once with the path named, and
text that only reports something (errors, log lines) has them escaped."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from engine.core.registry import task
from engine.core.security import OutputInvalid, json_for_storage, storable_text
from engine.exceptions import InputsInvalid, StepOutputInvalid
from engine.models import Attempt, Event, Run, StepRun, Workflow
from engine.services.scheduler import run_start, step_complete
from engine.services.workflows import workflow_save
from tests.api.conftest import client_for
from tests.conftest import definition, node

pytestmark = pytest.mark.django_db

HIGH, LOW = "\ud83d", "\ude00"


@task(name="tests.security_surrogate_output")
def surrogate_output(ctx):
    return {"items": [{"text": "a"}, {"text": "b"}, {"text": f"half an emoji {HIGH}"}]}


@task(name="tests.security_surrogate_noise")
def surrogate_noise(ctx):
    print(f"printed {HIGH} half an emoji")
    ctx.logger.warning("logged %s half an emoji", LOW)
    raise RuntimeError(f"message with {HIGH} half an emoji")


def run_one(slug: str, nodes: list[dict], drain, edges=()) -> Run:
    workflow_save(definition=definition(slug, nodes, list(edges)))
    run, _ = run_start(workflow=slug, inputs={})
    drain()
    run.refresh_from_db()
    return run


def raw_post(kind: str, url: str, body: str):
    """POST ``body`` as it is: the test client would re-encode a Python string with the surrogate itself."""
    return client_for(kind).generic("POST", url, body.encode("ascii"), content_type="application/json")


def test_json_for_storage_refuses_a_lone_surrogate_and_names_its_path_and_code_point():
    with pytest.raises(OutputInvalid) as err:
        json_for_storage({"items": [{}, {}, {"text": f"x{HIGH}"}]})
    assert str(err.value) == ("step output at $.items[2].text contains a lone surrogate (U+D83D), "
                              "which PostgreSQL cannot store")
    with pytest.raises(OutputInvalid) as err:
        json_for_storage({"a": {f"k{LOW}": 1}}, what="run inputs")
    assert str(err.value).startswith("run inputs at $.a contains a lone surrogate (U+DE00) in a key")


def test_json_for_storage_keeps_emoji_and_escaped_text_that_only_looks_like_a_surrogate():
    value = {"emoji": "\U0001f600", "text": "\\ud83d is how JSON writes half an emoji"}
    assert json.loads(json_for_storage(value)) == value


def test_storable_text_escapes_lone_surrogates():
    assert storable_text(f"a{HIGH}b{LOW}\U0001f600") == "a\\ud83db\\ude00\U0001f600"
    assert storable_text("plain") == "plain"


def test_a_step_output_with_a_lone_surrogate_fails_the_step_once_naming_the_path(drain):
    run = run_one("surrogate-out", [node("a", "tests.security_surrogate_output"), node("b")], drain,
                  edges=[("a", "b")])
    step = StepRun.objects.get(run=run, node_id="a")
    assert step.status == "failed" and step.output is None
    assert "OutputInvalid" in step.error and "$.items[2].text" in step.error and "U+D83D" in step.error
    assert Attempt.objects.filter(step=step).count() == 1 and run.status == "failed"
    assert StepRun.objects.get(run=run, node_id="b").status != "succeeded"


def test_a_transform_output_with_a_lone_surrogate_fails_the_transform_not_its_upstream(drain):
    transform = {"id": "t", "type": "transform", "config": {"template": "{{ {'text': '\\ud83d'} }}"}}
    run = run_one("surrogate-inline", [node("a"), transform], drain, edges=[("a", "t")])
    upstream = StepRun.objects.get(run=run, node_id="a")
    assert upstream.status == "succeeded" and Attempt.objects.filter(step=upstream).count() == 1
    step = StepRun.objects.get(run=run, node_id="t")
    assert step.status == "failed" and step.output is None
    assert "$.text" in step.error and "lone surrogate (U+D83D)" in step.error
    assert run.status == "failed"


def test_lone_surrogates_in_errors_and_logs_are_escaped_not_fatal(drain):
    run = run_one("surrogate-noise", [node("a", "tests.security_surrogate_noise", retry={"max_attempts": 1})],
                  drain)
    step = StepRun.objects.get(run=run)
    assert step.status == "failed" and "message with \\ud83d half an emoji" in step.error
    attempt = Attempt.objects.get(step=step)
    assert attempt.outcome == "failed" and "\\ud83d" in attempt.traceback
    assert {line["msg"] for line in attempt.logs} >= {"printed \\ud83d half an emoji", "logged \\ude00 half an emoji"}


class SurrogateReply(BaseHTTPRequestHandler):
    def do_GET(self):
        body = b'{"reply": {"text": "half an emoji \\ud83d"}}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def surrogate_server(settings):
    settings.WEFT_HTTP_ALLOWED_HOSTS = ["*", "127.0.0.1"]
    server = ThreadingHTTPServer(("127.0.0.1", 0), SurrogateReply)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


def http_call(url: str) -> dict:
    return {"id": "call", "type": "http", "config": {"url": url},
            "retry": {"max_attempts": 3, "backoff_s": 0, "jitter": 0}}


def test_an_http_response_with_a_lone_surrogate_fails_the_step_naming_the_path(surrogate_server, drain):
    run = run_one("surrogate-http", [http_call(surrogate_server)], drain)
    step = StepRun.objects.get(run=run)
    assert step.status == "failed" and step.output is None and run.status == "failed"
    assert "$.body.reply.text" in step.error and "lone surrogate (U+D83D)" in step.error
    assert "psycopg" not in step.error and "DataError" not in step.error


def test_an_http_response_with_a_lone_surrogate_fails_the_step_once(surrogate_server, drain):
    run = run_one("surrogate-http-once", [http_call(surrogate_server)], drain)
    assert Attempt.objects.filter(step__run=run).count() == 1


def test_run_inputs_with_a_lone_surrogate_are_refused():
    workflow_save(definition=definition("surrogate-inputs", [node("a")], []))
    with pytest.raises(InputsInvalid) as err:
        run_start(workflow="surrogate-inputs", inputs={"text": HIGH})
    assert "$.text" in err.value.message and "U+D83D" in err.value.message
    r = raw_post("operator", "/api/workflows/surrogate-inputs/runs/", '{"inputs": {"text": "\\ud83d"}}')
    assert r.status_code == 400, r.content
    assert r.json()["error"]["code"] == "malformed_request" and "surrogate" in r.json()["error"]["message"]
    assert Run.objects.count() == 0 and StepRun.objects.count() == 0


@pytest.mark.parametrize("url", ["/api/workflows/", "/api/workflows/validate/"])
def test_a_definition_name_with_a_lone_surrogate_is_refused(url):
    body = json.dumps({"definition": definition("surrogate-name", [node("a")], [])}).replace(
        '"Surrogate Name"', '"name \\udc00"')
    assert "\\udc00" in body
    r = raw_post("designer", url, body)
    assert r.status_code == 400, r.content
    assert r.json()["error"]["code"] == "malformed_request" and "U+DC00" in r.json()["error"]["message"]
    assert Workflow.objects.count() == 0


def test_a_complete_output_with_a_lone_surrogate_is_refused_and_the_step_is_unchanged(mixed_run):
    with pytest.raises(StepOutputInvalid):
        step_complete(run_id=mixed_run.pk, node_id="ask", output={"text": LOW})
    events = Event.objects.count()
    r = raw_post("operator", f"/api/runs/{mixed_run.pk}/steps/ask/complete/", '{"output": {"text": "\\ude00"}}')
    assert r.status_code == 400, r.content
    assert "surrogate" in r.json()["error"]["message"]
    step = StepRun.objects.get(run=mixed_run, node_id="ask")
    assert step.status == "waiting" and step.output is None and Event.objects.count() == events
