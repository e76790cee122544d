"""Chaos: worker processes SIGKILLed at random while one run maps 500 items.

Each item makes one journaled HTTP call carrying its idempotency key to a loopback server that counts effects
by key. Every item's effect must be applied once, and the node's output be complete and in item order.
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
from tests.conftest import definition, node, wait_for
from tests.support.effects import EffectServer

pytestmark = [pytest.mark.workers, pytest.mark.chaos, pytest.mark.django_db(transaction=True)]

ITEMS = int(os.environ.get("WEFT_CHAOS_MAP_ITEMS", "500"))


@pytest.mark.soak  # a long chaos run (minutes of kills and restarts): run with --soak
@pytest.mark.timeout(1500)
def test_sigkill_mid_map_loses_no_item_and_repeats_no_effect(workers):
    rng = random.Random(int(os.environ.get("WEFT_CHAOS_SEED", "20261203")))
    # Each item's response comes 0.1 s after its effect: the map lasts long enough for kills between the kills'
    # pauses, and a kill can land between an effect and its answer (the call is then made again with its key).
    with EffectServer(delay_s=float(os.environ.get("WEFT_CHAOS_MAP_DELAY_S", "0.1"))) as server:
        wf = workflow_save(definition=definition("chaos-map", [
            node("source", kwargs={"xs": "{{ inputs.xs }}"}),
            {**node("each", "tests.http_effect", kwargs={"url": server.url},
                    retry={"max_attempts": 20, "backoff_s": 0.2, "backoff_factor": 1.5, "max_backoff_s": 2}),
             "for_each": "{{ nodes.source.output.xs }}", "max_parallel": 50},
        ], [("source", "each")]))[0]
        workers.start()
        run, _ = run_start(workflow=wf, inputs={"xs": list(range(ITEMS))})
        wait_for(lambda: StepRun.objects.filter(run=run, node_id="each", status="waiting").exists(), timeout=120,
                 message="the map to start")  # the kills come mid-map
        kills, restarts = 0, 0
        deadline = time.monotonic() + 1200
        while time.monotonic() < deadline:
            if Run.objects.get(pk=run.pk).status != "running":
                break
            if os.environ.get("WEFT_CHAOS_PROGRESS"):
                print(dict(Counter(StepRun.objects.filter(run=run).values_list("status", flat=True))), flush=True)
            time.sleep(rng.uniform(2.0, 5.0))  # a restarted cluster needs a few seconds before it runs anything
            if rng.random() < 0.05:
                workers.kill_all()  # the whole host goes away: every cluster, the recovery loop
                workers.start()
                restarts += 1
            elif workers.kill_random(rng):
                kills += 1
        run.refresh_from_db()
        lost = Attempt.objects.filter(step__run=run, outcome="lost").count()
        print(f"\nchaos map: {ITEMS} items, {kills} SIGKILLs, {restarts} full restarts, {lost} attempts lost and "
              f"recovered, {sum(server.deliveries.values())} deliveries for {len(server.deliveries)} keys")
        assert run.status == "succeeded", run.error
        assert kills >= 3, "the test must actually kill workers"
        assert len(server.deliveries) == ITEMS and set(server.applied.values()) == {1}
        assert server.missing_key == 0
        output = StepRun.objects.get(run=run, node_id="each").output
        assert [item["results"][0]["echo"]["node"] for item in output] == [f"each[{i}]" for i in range(ITEMS)]
        succeeded = Counter(Attempt.objects.filter(step__run=run, step__map_parent__isnull=False,
                                                   outcome="succeeded").values_list("step_id", flat=True))
        assert len(succeeded) == ITEMS and set(succeeded.values()) == {1}
        assert not StepRun.objects.filter(run=run, status__in=["running", "queued", "pending", "waiting"]).exists()
