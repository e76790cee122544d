"""Size limits: each refusal is a clear error naming its setting, and nothing is half-saved. Values PostgreSQL
cannot store (NaN, NUL) fail a step cleanly instead of leaving it running."""

from __future__ import annotations

import pytest

from engine.core.registry import task
from engine.exceptions import GraphInvalid, InputsInvalid, StepOutputInvalid
from engine.models import Attempt, Event, Run, StepRun, Workflow, WorkflowVersion
from engine.services.scheduler import run_start, step_complete
from engine.services.workflows import workflow_save
from tests.api.conftest import client_for
from tests.conftest import definition, node

pytestmark = pytest.mark.django_db


@task(name="tests.security_blob")
def blob(ctx, size: int = 10):
    return {"blob": "x" * size}


@task(name="tests.security_bad_value")
def bad_value(ctx, kind: str):
    return {"nan": {"value": float("nan")}, "inf": [float("inf")], "nul": {"text": "a\x00b"},
            "nul_key": {"a\x00": 1}}[kind]


@task(name="tests.security_nul_noise")
def nul_noise(ctx, fail: bool = True):
    print("printed \x00 a NUL")
    ctx.logger.warning("logged \x00 a NUL")
    if fail:
        raise RuntimeError("message with a \x00 NUL")
    return {"ok": True}


@task(name="tests.security_chatty")
def chatty(ctx, lines: int = 20):
    for i in range(lines):
        print(f"line {i}")
    return {"printed": lines}


def run_one(slug: str, nodes: list[dict], drain, inputs=None) -> Run:
    workflow_save(definition=definition(slug, nodes, []))
    run, _ = run_start(workflow=slug, inputs=inputs or {})
    drain()
    run.refresh_from_db()
    return run


def test_a_definition_over_the_byte_limit_is_refused_and_nothing_is_saved(settings):
    settings.WEFT_MAX_DEFINITION_BYTES = 4096
    big = definition("big", [node("a")], [], description="d" * 5000)
    with pytest.raises(GraphInvalid) as err:
        workflow_save(definition=big)
    assert err.value.errors[0].code == "definition_too_large"
    assert "WEFT_MAX_DEFINITION_BYTES" in err.value.message and "4096" in err.value.message
    assert Workflow.objects.count() == 0 and WorkflowVersion.objects.count() == 0


def test_a_new_version_over_the_byte_limit_leaves_the_workflow_as_it_was(settings):
    workflow_save(definition=definition("grow", [node("a")], []))
    settings.WEFT_MAX_DEFINITION_BYTES = 4096
    r = client_for("designer").put("/api/workflows/grow/", {"definition": definition(
        "grow", [node("a")], [], description="d" * 5000)}, format="json")
    assert r.status_code == 400 and "WEFT_MAX_DEFINITION_BYTES" in r.json()["error"]["message"]
    assert WorkflowVersion.objects.filter(workflow__slug="grow").count() == 1
    assert Workflow.objects.get(slug="grow").description == ""


def test_a_definition_with_too_many_nodes_is_refused(settings):
    settings.WEFT_MAX_NODES = 5
    with pytest.raises(GraphInvalid) as err:
        workflow_save(definition=definition("many", [node(f"n{i}") for i in range(6)], []))
    assert err.value.errors[0].code == "too_many_nodes" and "5" in err.value.errors[0].message
    assert Workflow.objects.count() == 0


def test_a_definition_json_cannot_hold_is_refused_clearly():
    with pytest.raises(GraphInvalid) as err:
        workflow_save(definition=definition("nan", [node("a", kwargs={"x": float("nan")})], []))
    assert "NaN" in err.value.message
    assert Workflow.objects.count() == 0


def test_run_inputs_over_the_byte_limit_are_refused_and_no_run_is_made(settings):
    settings.WEFT_MAX_INPUT_BYTES = 2048
    workflow_save(definition=definition("inp", [node("a")], []))
    with pytest.raises(InputsInvalid) as err:
        run_start(workflow="inp", inputs={"blob": "x" * 3000})
    assert "WEFT_MAX_INPUT_BYTES" in err.value.message and "2048" in err.value.message
    r = client_for("operator").post("/api/workflows/inp/runs/", {"inputs": {"blob": "x" * 3000}}, format="json")
    assert r.status_code == 400 and r.json()["error"]["code"] == "inputs_invalid"
    assert "WEFT_MAX_INPUT_BYTES" in r.json()["error"]["message"]
    assert Run.objects.count() == 0 and StepRun.objects.count() == 0 and Event.objects.count() == 0
    run, created = run_start(workflow="inp", inputs={"blob": "x" * 1000})
    assert created


def test_an_oversized_step_output_fails_the_step_once_with_a_clear_error_and_is_not_truncated(settings, drain):
    settings.WEFT_MAX_OUTPUT_BYTES = 1024
    run = run_one("out", [node("a", "tests.security_blob", kwargs={"size": 5000})], drain)
    step = StepRun.objects.get(run=run)
    assert step.status == "failed" and step.output is None
    assert "OutputTooLarge" in step.error and "WEFT_MAX_OUTPUT_BYTES" in step.error and "1024" in step.error
    assert Attempt.objects.filter(step=step).count() == 1  # retrying cannot make it smaller
    assert run.status == "failed"


def test_an_oversized_inline_output_fails_the_step_with_a_clear_error(settings, drain):
    settings.WEFT_MAX_OUTPUT_BYTES = 1024
    big = {"id": "t", "type": "transform", "config": {"template": "{{ 'x' * 5000 }}"}}
    run = run_one("inline-out", [big], drain)
    step = StepRun.objects.get(run=run)
    assert step.status == "failed" and step.output is None and "WEFT_MAX_OUTPUT_BYTES" in step.error


def test_an_oversized_output_given_by_an_operator_is_refused_and_the_step_is_unchanged(settings, mixed_run):
    settings.WEFT_MAX_OUTPUT_BYTES = 1024
    with pytest.raises(StepOutputInvalid):
        step_complete(run_id=mixed_run.pk, node_id="ask", output={"blob": "x" * 5000})
    r = client_for("operator").post(f"/api/runs/{mixed_run.pk}/steps/ask/complete/",
                                    {"output": {"blob": "x" * 5000}}, format="json")
    assert r.status_code == 400 and r.json()["error"]["code"] == "output_invalid"
    assert "WEFT_MAX_OUTPUT_BYTES" in r.json()["error"]["message"]
    step = StepRun.objects.get(run=mixed_run, node_id="ask")
    assert step.status == "waiting" and step.output is None


def test_log_lines_beyond_the_limit_are_dropped_with_a_note(settings, drain):
    settings.WEFT_MAX_LOG_LINES = 5
    run = run_one("logs", [node("a", "tests.security_chatty", kwargs={"lines": 20})], drain)
    logs = Attempt.objects.get(step__run=run).logs
    assert [line["msg"] for line in logs[:5]] == [f"line {i}" for i in range(5)]
    assert len(logs) == 6 and "15 more log lines dropped" in logs[-1]["msg"] and "WEFT_MAX_LOG_LINES" in logs[-1]["msg"]


@pytest.mark.parametrize("kind", ["nan", "inf", "nul", "nul_key"])
def test_an_output_postgresql_cannot_store_fails_the_step_instead_of_leaving_it_running(kind, drain):
    run = run_one(f"bad-{kind.replace('_', '-')}", [node("a", "tests.security_bad_value", kwargs={"kind": kind})],
                  drain)
    step = StepRun.objects.get(run=run)
    assert step.status == "failed" and "OutputInvalid" in step.error
    assert ("NaN" in step.error) if kind in ("nan", "inf") else ("NUL" in step.error)
    assert Attempt.objects.filter(step=step).count() == 1 and run.status == "failed"


@pytest.mark.parametrize("template", ["{{ '\\x00' }}", "{{ 1e308 * 10 }}"])
def test_an_inline_output_postgresql_cannot_store_fails_the_step(template, drain):
    run = run_one("inline-bad", [{"id": "t", "type": "transform", "config": {"template": template}}], drain)
    step = StepRun.objects.get(run=run)
    assert step.status == "failed" and step.output is None


def test_nul_characters_in_errors_and_logs_are_escaped_not_fatal(drain):
    run = run_one("nul-noise", [node("a", "tests.security_nul_noise", retry={"max_attempts": 1})], drain)
    step = StepRun.objects.get(run=run)
    assert step.status == "failed" and "message with a \\x00 NUL" in step.error
    attempt = Attempt.objects.get(step=step)
    assert "\\x00" in attempt.error and "\x00" not in attempt.traceback
    assert {line["msg"] for line in attempt.logs} >= {"printed \\x00 a NUL", "logged \\x00 a NUL"}

