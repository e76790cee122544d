"""A running step's captured lines are visible before the attempt ends."""

from __future__ import annotations

import threading
import time

import pytest
from django.db import connection

from engine.models import Attempt, StepRun
from engine.services.scheduler import run_start
from engine.services.workflows import workflow_save
from tests.api.conftest import client_for
from tests.conftest import definition, node, wait_for

# The executor runs in a thread with its own connection, so the data must be committed.
pytestmark = pytest.mark.django_db(transaction=True)


def in_thread(drain) -> threading.Thread:
    def work():
        try:
            drain()
        finally:
            connection.close()

    thread = threading.Thread(target=work)
    thread.start()
    return thread


def test_running_step_logs_are_readable_before_it_finishes(drain, settings, tmp_path):
    settings.WEFT_LOG_FLUSH_S = 0.1
    release = tmp_path / "release"
    workflow, _, _ = workflow_save(definition=definition("live", [
        node("slow", "obs.wait_for_file", kwargs={"path": str(release)})], []))
    run, _ = run_start(workflow=workflow, inputs={})
    worker = in_thread(drain)
    try:
        viewer = client_for("viewer")

        def live_lines():
            body = viewer.get(f"/api/runs/{run.pk}/logs/", {"node": "slow"}).json()
            return [line["msg"] for line in body["lines"]]

        wait_for(lambda: live_lines() == ["started; waiting", f"still waiting for {release}"], timeout=10,
                 message="the running step's lines")
        assert Attempt.objects.get(step__run=run).outcome == "running"
    finally:
        release.write_text("go")
        worker.join(timeout=30)
    assert StepRun.objects.get(run=run).status == "succeeded"
    assert [line["msg"] for line in Attempt.objects.get(step__run=run).logs] == [
        "started; waiting", f"still waiting for {release}", "released"]


def test_without_flushing_lines_appear_only_at_the_end(drain, settings, tmp_path):
    settings.WEFT_LOG_FLUSH_S = 0
    release = tmp_path / "release"
    workflow, _, _ = workflow_save(definition=definition("not-live", [
        node("slow", "obs.wait_for_file", kwargs={"path": str(release)})], []))
    run, _ = run_start(workflow=workflow, inputs={})
    worker = in_thread(drain)
    try:
        wait_for(lambda: StepRun.objects.filter(run=run, status="running").exists(), timeout=10,
                 message="the step to run")
        time.sleep(0.5)
        assert Attempt.objects.get(step__run=run).logs == []
    finally:
        release.write_text("go")
        worker.join(timeout=30)
    assert len(Attempt.objects.get(step__run=run).logs) == 3
