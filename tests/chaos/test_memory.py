"""Memory: a worker process's resident memory after 1,000,000 steps is within 10 MB of what it was after the
first 10,000 (figure in docs/benchmarks.md, "Memory").

Optional (--soak): at the bench's rate a million steps take tens of minutes. ``WEFT_MEMORY_STEPS`` sets the
count for a shorter look. django-q2 replaces a worker after ``recycle`` tasks (500 by default), which would
hide a leak: the queues here never recycle, so the same processes run every step, and the test checks that
they did.
"""

from __future__ import annotations

import json
import os
import time

import psutil
import pytest

from engine.models import Run, StepRun
from engine.services.scheduler import run_start
from engine.services.workflows import workflow_save
from engine.states import RunStatus
from tests.conftest import TEST_QUEUES, chain

STEPS = int(os.environ.get("WEFT_MEMORY_STEPS", "1000000"))
# The suite's 600 s timeout would end a million steps a third of the way: allow 50 steps a second, a loaded machine's.
pytestmark = [pytest.mark.workers, pytest.mark.chaos, pytest.mark.soak, pytest.mark.django_db(transaction=True),
              pytest.mark.timeout(max(600, STEPS // 50))]
WARM_STEPS = 10_000
CHAIN = 10  # steps a run
BACKLOG = 200  # unfinished runs kept waiting for the workers
REPORT_EVERY = 100_000  # steps between the RSS lines printed on the way
GROWTH_LIMIT_MB = 10


def resident_mb(pids: list[int]) -> dict[int, float]:
    out = {}
    for pid in pids:
        try:
            out[pid] = psutil.Process(pid).memory_info().rss / 2**20
        except psutil.NoSuchProcess:
            continue
    return out


def step_worker_pids(workflow) -> list[int]:
    """The processes that ran the newest finished runs' steps (a step records its worker as host:pid)."""
    newest = Run.objects.filter(workflow=workflow, status=RunStatus.SUCCEEDED).order_by("-finished_at")[:50]
    workers = StepRun.objects.filter(run__in=list(newest), worker__contains=":").values_list("worker", flat=True)
    return sorted({int(w.rsplit(":", 1)[1]) for w in workers})


def test_a_workers_memory_after_a_million_steps_is_within_10_mb_of_after_the_first_10000(worker_env, workers):
    workers.env = dict(worker_env, WEFT_QUEUES=json.dumps(
        {name: {**cfg, "recycle": 10**9} for name, cfg in TEST_QUEUES.items()}))
    workers.start()
    workflow = workflow_save(definition=chain("memory-soak", CHAIN))[0]
    runs = -(-STEPS // CHAIN)
    started = done = 0
    warm: dict[int, float] | None = None
    t0 = time.monotonic()
    while done < runs:
        while started < runs and started - done < BACKLOG:
            run_start(workflow=workflow, inputs={})
            started += 1
        settled = Run.objects.filter(workflow=workflow, status__in=(RunStatus.SUCCEEDED, RunStatus.FAILED,
                                                                    RunStatus.CANCELLED))
        done = settled.count()
        if warm is None and done * CHAIN >= WARM_STEPS:
            warm = resident_mb(step_worker_pids(workflow))
            t_warm, done_warm = time.monotonic(), done
            reported = done * CHAIN
            print(f"\nafter {done * CHAIN:,} steps: worker RSS {warm}")
        elif warm is not None and done * CHAIN >= reported + REPORT_EVERY:
            reported = done * CHAIN
            print(f"after {reported:,} steps ({time.monotonic() - t0:.0f} s): worker RSS {resident_mb(list(warm))}",
                  flush=True)
        if started - done >= BACKLOG:
            time.sleep(0.5)
    elapsed = time.monotonic() - t0
    end = resident_mb(step_worker_pids(workflow))

    assert Run.objects.filter(workflow=workflow).exclude(status=RunStatus.SUCCEEDED).count() == 0
    assert warm and set(end) == set(warm), f"the worker processes changed: {sorted(warm or {})} -> {sorted(end)}"
    growth = {pid: round(end[pid] - warm[pid], 1) for pid in end}
    rate = (done - done_warm) * CHAIN / (time.monotonic() - t_warm)
    print(f"after {done * CHAIN:,} steps in {elapsed:.0f} s ({rate:.0f} steps/s after the warm-up): "
          f"worker RSS {end} MB, growth {growth} MB")
    assert all(g <= GROWTH_LIMIT_MB for g in growth.values()), growth
