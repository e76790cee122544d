"""Chaos: worker processes SIGKILLed at random while runs of a 30-step chain execute (50 strict, 20 relaxed).

Each step makes one journaled HTTP call carrying its idempotency key to a loopback
server that counts effects by key. Nothing may be lost, nothing executed twice: in strict runs, and in relaxed
ones too (their commits skip the WAL flush, but a killed worker cannot lose what PostgreSQL has committed).
"""

from __future__ import annotations

import os
import random
import time
from collections import Counter

import pytest

from engine.models import Attempt, Run, StepRun
from engine.services.scheduler import run_start
from engine.services.workflows import workflow_save
from tests.conftest import chain, node
from tests.support.effects import EffectServer

pytestmark = [pytest.mark.workers, pytest.mark.chaos, pytest.mark.django_db(transaction=True)]

# Runs per case (WEFT_CHAOS_RUNS sets both): strict is the long storm; relaxed, the same storm on fewer runs.
RUNS = {d: int(os.environ.get("WEFT_CHAOS_RUNS", default)) for d, default in (("strict", "50"), ("relaxed", "20"))}
STEPS = 30


@pytest.mark.parametrize("durability", ["strict", "relaxed"])
def test_sigkill_workers_loses_nothing_and_repeats_no_effect(workers, durability):
    runs = RUNS[durability]
    rng = random.Random(int(os.environ.get("WEFT_CHAOS_SEED", "20261127")))
    with EffectServer() as server:
        wf = workflow_save(definition={**chain(f"chaos-{durability}", STEPS, lambda i: node(
            f"s{i}", "tests.http_effect", kwargs={"url": server.url},
            retry={"max_attempts": 20, "backoff_s": 0.2, "backoff_factor": 1.5, "max_backoff_s": 2}),
        ), "durability": durability})[0]
        workers.start()
        run_ids = [run_start(workflow=wf, inputs={"n": i})[0].pk for i in range(runs)]
        assert set(Run.objects.filter(pk__in=run_ids).values_list("durability", flat=True)) == {durability}
        kills, restarts = 0, 0
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            if Run.objects.filter(pk__in=run_ids).exclude(status="running").count() == runs:
                break
            time.sleep(rng.uniform(0.3, 1.0))
            if rng.random() < 0.1:
                workers.kill_all()  # the whole host goes away: every cluster, the recovery loop
                workers.start()
                restarts += 1
            elif workers.kill_random(rng):
                kills += 1
        statuses = Counter(Run.objects.filter(pk__in=run_ids).values_list("status", flat=True))
        lost_attempts = Attempt.objects.filter(step__run_id__in=run_ids, outcome="lost").count()
        print(f"\nchaos ({durability}): {runs} runs x {STEPS} steps, {kills} SIGKILLs, {restarts} full restarts, "
              f"{lost_attempts} attempts lost and recovered, {sum(server.deliveries.values())} deliveries "
              f"for {len(server.deliveries)} keys, statuses {dict(statuses)}")
        assert statuses == {"succeeded": runs}
        assert kills >= 3, "the test must actually kill workers"
        # every step's one call used one stable key; each effect applied exactly once
        assert len(server.deliveries) == runs * STEPS
        assert set(server.applied.values()) == {1}
        assert server.missing_key == 0
        # no step that succeeded was executed again
        succeeded_attempts = Counter(
            Attempt.objects.filter(step__run_id__in=run_ids, outcome="succeeded").values_list("step_id", flat=True))
        assert len(succeeded_attempts) == runs * STEPS and set(succeeded_attempts.values()) == {1}
        for step_id, attempt, finished in StepRun.objects.filter(run_id__in=run_ids).values_list(
                "id", "attempt", "finished_at"):
            assert not Attempt.objects.filter(step_id=step_id, started_at__gt=finished).exists()
            assert Attempt.objects.get(step_id=step_id, outcome="succeeded").number == attempt
        assert not StepRun.objects.filter(run_id__in=run_ids, status__in=["running", "queued"]).exists()
