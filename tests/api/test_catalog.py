"""The catalog: node types (what the editor's palette and config forms are built from) and queues."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from engine.core.registry import node_types
from engine.models import StepRun, WorkerProcess
from engine.services.scheduler import run_start
from engine.services.workflows import workflow_save
from engine.worker.claim import step_claim
from tests.conftest import definition, node

pytestmark = pytest.mark.django_db


def test_node_types_list_every_registered_type_with_its_config_schema_and_default_queue(api):
    r = api("viewer").get("/api/node-types/")
    assert r.status_code == 200
    listed = {t["name"]: t for t in r.json()}
    assert set(listed) == set(node_types())
    assert [t["name"] for t in r.json()] == sorted(listed)
    python = listed["python"]
    assert python["label"] == "Python function" and python["description"]
    assert python["default_queue"] == "default" and python["inline"] is False
    assert "function" in python["config_schema"]["required"]
    assert python["config_schema"]["properties"]["function"]["type"] == "string"
    assert listed["transform"]["inline"] is True
    assert listed["approval"]["default_queue"] == "fast"
    assert listed["approval"]["untestable"].startswith("an approval waits inside a run")
    assert python["untestable"] is None
    assert all(isinstance(t["outputs"], dict) for t in r.json())


def test_queues_show_live_workers_depth_running_oldest_waiting_and_throughput(api, drain, settings):
    finished = workflow_save(definition=definition("done-once", [node("x")], []))[0]
    run_start(workflow=finished, inputs={})
    drain()  # one step finished within the last minute, on "default"
    waiting = workflow_save(definition=definition("waiting", [node("a"), node("b"), node("c", queue="fast")], []))[0]
    run, _ = run_start(workflow=waiting, inputs={})
    b = StepRun.objects.get(run=run, node_id="b")
    assert step_claim(run_id=run.pk, step_id=b.pk, attempt=1, worker="w:1") is not None
    StepRun.objects.filter(run=run, node_id="a").update(queued_at=timezone.now() - timedelta(seconds=90))
    now = timezone.now()
    WorkerProcess.objects.create(host="h", pid=1, queue="default", workers=2, started_at=now, last_seen=now)
    WorkerProcess.objects.create(host="h", pid=2, queue="default", workers=2, started_at=now, last_seen=now)
    # A cluster that stopped heartbeating a minute ago is not online.
    WorkerProcess.objects.create(host="h", pid=3, queue="fast", workers=2, started_at=now,
                                 last_seen=now - timedelta(minutes=1))

    r = api("viewer").get("/api/queues/")
    assert r.status_code == 200
    queues = {q["name"]: q for q in r.json()}
    assert list(queues) == list(settings.WEFT_QUEUES)
    default, fast = queues["default"], queues["fast"]
    assert (default["clusters_online"], default["workers_online"]) == (2, 4)
    assert (fast["clusters_online"], fast["workers_online"]) == (0, 0)
    assert default["depth"] == 1 and default["running"] == 1
    assert fast["depth"] == 1 and fast["running"] == 0
    assert 80 <= default["oldest_queued_s"] < 150  # now() is the test transaction's start
    assert fast["oldest_queued_s"] >= 0
    assert queues["slow"]["depth"] == 0 and queues["slow"]["oldest_queued_s"] is None
    assert default["finished_last_minute"] == 1 and fast["finished_last_minute"] == 0
    assert (default["workers"], default["timeout"]) == (settings.WEFT_QUEUES["default"]["workers"],
                                                        settings.WEFT_QUEUES["default"]["timeout"])
