"""What the worker records for an attempt: how a failure is told apart, and what its modules refer to."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from engine.core.registry import task
from engine.models import Attempt, Run, StepRun
from engine.services.scheduler import run_start
from engine.services.workflows import workflow_save
from tests.conftest import definition, node

REPO = Path(__file__).resolve().parents[2]


@task(name="tests.worker_encodes_a_set")
def encodes_a_set(ctx):
    """The node's own code fails to encode a value (for an API it calls): an error of the node, not of its output."""
    return {"sent": json.dumps({"tags": {1, 2}})}


@task(name="tests.worker_returns_a_set")
def returns_a_set(ctx):
    return {"tags": {1, 2}}


def run_one(slug: str, function: str, drain) -> tuple[Run, StepRun]:
    retry = {"max_attempts": 2, "backoff_s": 0, "jitter": 0}
    workflow_save(definition=definition(slug, [node("a", function, retry=retry)], []))
    run, _ = run_start(workflow=slug)
    drain()
    run.refresh_from_db()
    return run, StepRun.objects.get(run=run)


@pytest.mark.django_db
def test_a_type_error_raised_by_the_nodes_code_is_retried_as_the_nodes_error(drain):
    run, step = run_one("encodes-a-set", "tests.worker_encodes_a_set", drain)
    attempts = list(Attempt.objects.filter(step=step).order_by("number").values_list("error_type", flat=True))
    assert attempts == ["TypeError", "TypeError"]  # retried by its policy, like any error of the node
    assert step.status == "failed" and step.error.startswith("TypeError: ") and run.status == "failed"


@pytest.mark.django_db
def test_an_output_json_cannot_encode_fails_the_step_once_with_a_clear_error(drain):
    run, step = run_one("returns-a-set", "tests.worker_returns_a_set", drain)
    assert step.status == "failed" and step.output is None
    assert step.error.startswith("OutputTooLarge: step output is not JSON-serialisable")
    assert list(Attempt.objects.filter(step=step).values_list("error_type", flat=True)) == ["OutputTooLarge"]
    assert run.status == "failed"


def test_every_document_the_engine_refers_to_is_in_the_repository():
    missing = []
    for path in sorted((REPO / "engine").rglob("*.py")):
        for name in re.findall(r"[A-Za-z0-9_./-]+\.md\b", path.read_text(encoding="utf-8")):
            if not (REPO / name).is_file():
                missing.append(f"{path.relative_to(REPO)}: {name}")
    assert missing == []
