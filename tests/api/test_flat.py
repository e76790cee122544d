"""FlatSerializer (api/flat.py) writes what DRF's own loop writes, for every endpoint that uses it."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest
from django.utils import timezone as dj_timezone
from rest_framework import serializers

from api.flat import FlatListSerializer, FlatSerializer
from api.serializers import StepSerializer
from api.step_rows import steps_json
from engine.services import queries
from engine.services.scheduler import run_start
from engine.services.workflows import workflow_save
from tests.api.conftest import failing_and_approval
from tests.conftest import definition, node

pytestmark = pytest.mark.django_db


def drf(monkeypatch):
    """Make every FlatSerializer use DRF's own to_representation until the returned undo is called."""
    patch = pytest.MonkeyPatch()
    patch.setattr(FlatSerializer, "to_representation", serializers.Serializer.to_representation)
    patch.setattr(FlatListSerializer, "to_representation", serializers.ListSerializer.to_representation)
    return patch.undo


def both(fetch) -> tuple[str, str]:
    """The JSON of ``fetch()`` with FlatSerializer, then with DRF's loop."""
    flat = json.dumps(fetch(), sort_keys=True)
    undo = drf(None)
    try:
        reference = json.dumps(fetch(), sort_keys=True)
    finally:
        undo()
    return flat, reference


@pytest.mark.parametrize("zone", ["UTC", "Europe/Paris", "America/St_Johns"])
def test_run_detail_steps_timeline_and_events_are_written_as_drf_writes_them(api, drain, zone):
    workflow, _, _ = workflow_save(definition=failing_and_approval())
    run, _ = run_start(workflow=workflow, inputs={"x": 1})
    drain()
    chatty = workflow_save(definition=definition("chatty", [node("c", "tests.api_chatty")], []))[0]
    other, _ = run_start(workflow=chatty, inputs={})
    drain()
    client = api("viewer")
    paths = [f"/api/runs/{run.pk}/", f"/api/runs/{run.pk}/timeline/", f"/api/runs/{run.pk}/events/",
             f"/api/runs/{run.pk}/steps/bad/", f"/api/runs/{run.pk}/steps/each/items/", "/api/runs/",
             f"/api/runs/{other.pk}/steps/c/", f"/api/runs/{other.pk}/", "/api/runs/?status=running"]
    with dj_timezone.override(zone):
        for path in paths:
            flat, reference = both(lambda p=path: client.get(p).json())
            assert flat == reference, path
            assert len(flat) > 50


@pytest.mark.parametrize("zone", ["UTC", "Europe/London", "Asia/Kolkata"])
def test_a_runs_steps_read_as_plain_rows_are_written_as_its_step_instances_are(drain, zone):
    """The run detail writes its steps from plain rows (queries.run_steps, api.step_rows); a step's own endpoints
    write an instance (queries.step_get) with StepSerializer."""
    workflow, _, _ = workflow_save(definition=failing_and_approval())
    run, _ = run_start(workflow=workflow, inputs={"x": 1})
    drain()
    run = queries.run_get(run.pk)
    with dj_timezone.override(zone):
        rows = json.loads(steps_json(queries.run_steps(run)).text)
        instances = [StepSerializer(queries.step_get(run, step["node_id"])).data for step in rows]
    assert rows == json.loads(json.dumps(instances))
    assert all(tuple(step) == tuple(StepSerializer().fields) for step in rows)
    assert {s["status"] for s in rows} >= {"failed", "succeeded"}
    assert any(s["map"] for s in rows) and any(s["duration_s"] for s in rows)
    assert any(s["output"] for s in rows) and any(s["waiting_detail"] for s in rows)
    assert all(s["started_at"] is None or s["started_at"].endswith("Z" if zone != "Asia/Kolkata" else "+05:30")
               for s in rows)


class Step(FlatSerializer):
    name = serializers.CharField()
    count = serializers.IntegerField()
    at = serializers.DateTimeField(allow_null=True)
    maybe = serializers.CharField(allow_null=True)
    value = serializers.JSONField(allow_null=True)
    ratio = serializers.FloatField()
    ok = serializers.BooleanField()
    slug = serializers.CharField(source="parent.slug")
    span = serializers.SerializerMethodField()

    def get_span(self, obj) -> int:
        return 3


class Parent:
    slug = "p"


class Obj:
    def __init__(self, **kw):
        self.__dict__.update(kw)


@pytest.mark.parametrize("instance", [
    Obj(name="a", count=1, at=datetime(2026, 12, 4, 16, 7, 23, 5, tzinfo=UTC), maybe=None, value={"k": [1]},
        ratio=1, ok=1, parent=Parent()),
    Obj(name=5, count="7", at=datetime(2026, 7, 1, 12, tzinfo=timezone(timedelta(hours=5))), value=None, ratio=0.5,
        ok="false", parent=Parent()),  # no "maybe": allow_null makes it null
    {"name": "d", "count": 2, "at": None, "maybe": "m", "value": [1, "x"], "ratio": 2.0, "ok": False,
     "parent": {"slug": "q"}},
    Obj(name=lambda: "called", count=3, at="2026-01-01T00:00:00Z", maybe="", value=0, ratio=3, ok=True,
        parent=Parent()),
])
@pytest.mark.parametrize("zone", ["UTC", "Asia/Kolkata"])
def test_each_kind_of_field_and_value_is_written_as_drf_writes_it(instance, zone):
    with dj_timezone.override(zone):
        flat, reference = both(lambda: Step(instance).data)
        assert flat == reference
        flat, reference = both(lambda: Step([instance, instance], many=True).data)
        assert flat == reference
