"""Lone surrogates in step outputs on real worker processes: the step that made the output fails once, clearly;
no step is marked lost, and nothing waits for a lease to expire."""

from __future__ import annotations

import pytest

from engine.models import Attempt, StepRun
from engine.services.scheduler import run_start
from engine.services.workflows import workflow_save
from tests.conftest import definition, finished, node, wait_for

pytestmark = [pytest.mark.workers, pytest.mark.django_db(transaction=True)]


def test_a_transform_output_with_a_lone_surrogate_fails_the_transform_once(workers):
    transform = {"id": "t", "type": "transform", "config": {"template": "{{ {'items': [1, 2, '\\ud83d']} }}"}}
    workflow_save(definition=definition("surrogate-transform", [node("a"), transform, node("b")],
                                        [("a", "t"), ("t", "b")]))
    workers.start()
    run, _ = run_start(workflow="surrogate-transform")
    run = wait_for(finished(run.pk), timeout=60, message="the run to finish")
    steps = {s.node_id: s for s in StepRun.objects.filter(run=run)}
    assert run.status == "failed"
    assert steps["a"].status == "succeeded"
    assert steps["t"].status == "failed" and "$.items[2]" in steps["t"].error and "U+D83D" in steps["t"].error
    assert steps["b"].status != "succeeded"
    assert not Attempt.objects.filter(step__run=run, outcome="lost").exists()
    assert Attempt.objects.filter(step=steps["a"]).count() == 1


def test_a_python_node_returning_a_lone_surrogate_fails_once_naming_the_path(workers):
    python = node("p", kwargs={"reply": {"text": "{{ 'half an emoji \\ude00' }}"}})
    workflow_save(definition=definition("surrogate-python", [python, node("b")], [("p", "b")]))
    workers.start()
    run, _ = run_start(workflow="surrogate-python")
    run = wait_for(finished(run.pk), timeout=60, message="the run to finish")
    step = StepRun.objects.get(run=run, node_id="p")
    assert run.status == "failed" and step.status == "failed" and step.output is None
    assert "OutputInvalid" in step.error and "$.reply.text" in step.error and "U+DE00" in step.error
    assert list(Attempt.objects.filter(step=step).values_list("outcome", flat=True)) == ["failed"]
