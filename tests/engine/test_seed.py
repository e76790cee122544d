"""``bench seed``: history as the engine leaves it, with ids the engine's later inserts never reuse; ``bench api``."""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import connection

from engine.models import Attempt, Event, JournalEntry, Run, StepRun
from engine.operations.seed import TABLES, history_seed
from engine.operations.seed_workflows import WIDE_SLUG, WIDE_STEPS
from engine.services.scheduler import run_start
from engine.services.workflows import workflow_save
from engine.states import STEP_NEXT, StepStatus
from tests.conftest import chain

pytestmark = pytest.mark.django_db(transaction=True)


def test_seeded_runs_are_finished_and_every_step_went_through_allowed_transitions():
    seeded = history_seed(runs=300, wide_runs=1)
    assert seeded.runs == 301 and seeded.rows["engine_run"] == 301
    statuses = Counter(Run.objects.values_list("status", flat=True))
    assert statuses["succeeded"] > 0.8 * 301 and statuses["failed"] > 0 and statuses["cancelled"] > 0
    assert Run.objects.values("workflow").distinct().count() == 7
    assert StepRun.objects.filter(run__workflow__slug=WIDE_SLUG).count() == WIDE_STEPS
    events = defaultdict(list)
    for run_id, seq, kind, node_id, payload in Event.objects.order_by("run", "seq").values_list(
            "run_id", "seq", "type", "node_id", "payload"):
        events[run_id].append((seq, kind, node_id, payload))
    attempts = defaultdict(list)
    for step_id, number, outcome in Attempt.objects.order_by("step", "number").values_list("step", "number",
                                                                                             "outcome"):
        attempts[step_id].append((number, outcome))
    steps = defaultdict(list)
    for step in StepRun.objects.all():
        steps[step.run_id].append(step)
    for run in Run.objects.all():
        run_events = events[run.pk]
        assert [e[0] for e in run_events] == list(range(1, run.last_seq + 1)), "events numbered without a gap"
        assert run.unfinished_steps == 0 and run.finished_at >= run.started_at >= run.created_at
        assert run_events[0][1] == "run.running" and f"run.{run.status}" in {e[1] for e in run_events}
        step_status = {s.node_id: StepStatus.PENDING for s in steps[run.pk]}
        for _, kind, node_id, payload in run_events:
            if not kind.startswith("step."):
                continue
            to = kind.removeprefix("step.")
            assert payload["from"] == step_status[node_id] and to in STEP_NEXT[step_status[node_id]], (kind, payload)
            step_status[node_id] = to
        by_status = Counter(s.status for s in steps[run.pk])
        for step in steps[run.pk]:
            assert step_status[step.node_id] == step.status, "a step's last event is its status"
            assert [n for n, _ in attempts[step.pk]] == list(range(1, step.attempt + 1))
            if step.attempt:
                assert attempts[step.pk][-1][1] == {"failed": "failed", "succeeded": "succeeded"}.get(
                    step.status, "cancelled")
        if run.status == "succeeded":
            assert set(by_status) == {"succeeded"} and run.outputs
        elif run.status == "failed":
            assert by_status["failed"] == 1 and run.error.startswith("step(s) failed: ")
        else:
            assert by_status["cancelled"] >= 1 and not by_status["failed"]
    assert JournalEntry.objects.filter(key="completion", status="succeeded", result__has_key="usage").exists()
    assert Attempt.objects.exclude(logs=[]).exists() and Attempt.objects.filter(outcome="failed").exclude(
        traceback="").exists()


def test_the_engine_inserts_after_a_seed_without_colliding_with_its_ids():
    history_seed(runs=50, wide_runs=0)
    with connection.cursor() as cur:
        for table in TABLES[1:]:
            cur.execute(f"SELECT max(id) <= (SELECT last_value FROM {table}_id_seq) FROM {table}")  # noqa: S608
            assert cur.fetchone()[0], table
    run, _ = run_start(workflow=workflow_save(definition=chain("after-seed", 3))[0])
    assert run.steps.count() == 3 and run.events.count() == 2


def test_bench_seed_then_bench_api_print_their_figures_as_json():
    out = StringIO()
    call_command("bench", "seed", "--runs", "40", "--json", stdout=out)
    seed = json.loads(out.getvalue())
    assert seed["runs"] == 43 and seed["rows_per_s"] > 0 and seed["rows"]["engine_event"] > 40 * 10
    out = StringIO()
    call_command("bench", "api", "--runs", "2", "--json", stdout=out)
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert {line["endpoint"] for line in lines} >= {"run list API, by workflow", "1,000-step run timeline API",
                                                    "/metrics", "queues page", "workflow analytics API (30 days)"}
    for line in lines:
        assert line["requests"] == 2 and 0 < line["p50_ms"] <= line["p95_ms"] and line["queries"] > 0
        assert 0 < line["cpu_p50_ms"]
        assert line["target_p95_ms"] in (50, 100, 150, 200)
