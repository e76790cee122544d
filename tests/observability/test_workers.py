"""Real ``runworkers`` processes: metrics after a known run (with a retry and a killed worker), /readyz
with one queue's cluster not running, and a node flooding its logs while its worker's memory is measured."""

from __future__ import annotations

import os
import re
import signal

import pytest
from django.test import Client

from engine.models import Attempt, Run, StepRun
from engine.observability.logging import MAX_MESSAGE_CHARS
from engine.services.scheduler import run_start
from engine.services.workflows import workflow_save
from tests.conftest import definition, node, wait_for
from tests.observability.helpers import delta, scrape, value

pytestmark = pytest.mark.workers

NO_BACKOFF = {"max_attempts": 2, "backoff_s": 0, "jitter": 0}


def worker_pid(step: StepRun) -> int:
    return int(step.worker.rsplit(":", 1)[1])


def test_metrics_after_a_known_run_and_readiness_without_the_slow_cluster(workers, worker_env, settings):
    settings.WEFT_METRICS_DIR = worker_env["WEFT_METRICS_DIR"]
    client = Client()
    workers.start(queues="default,fast")
    wait_for(lambda: client.get("/readyz").json()["checks"]["queues"].get("missing") == ["slow"], timeout=30,
             message="the default and fast clusters to heartbeat")
    before = scrape(client)
    workflow, _, _ = workflow_save(definition=definition("known", [
        node("a"),
        node("flaky", "obs.fail_once", queue="fast", retry=NO_BACKOFF),
        node("killed", "obs.hang_first_attempt", retry=NO_BACKOFF),
    ], [("a", "flaky"), ("a", "killed")]))
    run, _ = run_start(workflow=workflow, inputs={})
    hung = wait_for(lambda: StepRun.objects.filter(run=run, node_id="killed", status="running", attempt=1)
                    .exclude(worker="").first(), timeout=30, message="the first attempt of 'killed' to run")
    # the claim commits before the worker counts the attempt started: kill it only once it has
    wait_for(lambda: delta(before, scrape(client), "weft_steps_started_total", queue="default",
                           node_type="python") == 2,
             timeout=30, message="the worker to count 'killed' started")
    os.kill(worker_pid(hung), signal.SIGKILL)  # its lease expires; recovery counts the attempt lost and retries
    wait_for(lambda: Run.objects.get(pk=run.pk).status in ("succeeded", "failed"), timeout=60,
             message="the run to finish")
    assert Run.objects.get(pk=run.pk).status == "succeeded"
    assert list(Attempt.objects.filter(step__run=run, step__node_id="killed").order_by("number")
                .values_list("outcome", flat=True)) == ["lost", "succeeded"]
    after = scrape(client)

    def d(name, **labels):
        return delta(before, after, name, **labels)

    python_default = {"queue": "default", "node_type": "python"}
    python_fast = {"queue": "fast", "node_type": "python"}
    assert d("weft_steps_started_total", **python_default) == 3  # a, killed twice
    assert d("weft_steps_started_total", **python_fast) == 2  # flaky twice
    assert d("weft_steps_finished_total", **python_default, outcome="succeeded") == 2
    assert d("weft_steps_finished_total", **python_default, outcome="lost") == 1
    assert d("weft_steps_finished_total", **python_fast, outcome="failed") == 1
    assert d("weft_steps_finished_total", **python_fast, outcome="succeeded") == 1
    assert d("weft_step_retries_total", **python_default) == 1
    assert d("weft_step_retries_total", **python_fast) == 1
    assert d("weft_attempts_lost_total", **python_default) == 1
    assert d("weft_attempts_lost_total", **python_fast) == 0
    assert d("weft_step_duration_seconds_count", **python_default) == 2
    assert d("weft_step_duration_seconds_count", **python_fast) == 2
    assert d("weft_step_duration_seconds_sum", **python_default) > 0
    assert d("weft_step_queue_wait_seconds_count", queue="default") == 3
    assert d("weft_step_queue_wait_seconds_count", queue="fast") == 2
    assert value(after, "weft_runs", status="succeeded") == 1
    assert value(after, "weft_queue_depth", queue="default") == 0
    assert value(after, "weft_queue_clusters_online", queue="default") == 1
    assert value(after, "weft_queue_clusters_online", queue="fast") == 1
    assert value(after, "weft_queue_clusters_online", queue="slow") == 0

    response = client.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["checks"]["database"] == {"ok": True} and body["checks"]["migrations"] == {"ok": True}
    assert body["checks"]["queues"]["ok"] is False and body["checks"]["queues"]["missing"] == ["slow"]
    assert body["checks"]["queues"]["error"] == ("no live worker cluster for queue(s) slow "
                                                 "(start `manage.py runworkers --queues slow`)")


def test_a_node_flooding_its_logs_keeps_bounded_logs_and_bounded_worker_memory(workers):
    workers.start(queues="default")
    workflow, _, _ = workflow_save(definition=definition("flood", [
        node("flood", "obs.flood", kwargs={"big_lines": 20, "big_bytes": 1_000_000, "lines": 1_000_000},
             retry={"max_attempts": 1})], []))
    run, _ = run_start(workflow=workflow, inputs={})
    wait_for(lambda: Run.objects.get(pk=run.pk).status in ("succeeded", "failed"), timeout=90,
             message="the flooding run to finish")
    step = StepRun.objects.get(run=run)
    assert step.status == "succeeded", step.error
    logs = Attempt.objects.get(step=step).logs
    assert len(logs) == 1000 + 1  # WEFT_MAX_LOG_LINES, then the note
    big = [line for line in logs if line["msg"].startswith("xxxxx")]
    assert len(big) == 40  # 20 logged and 20 printed megabyte lines, each cut
    assert all(line["msg"].endswith(f"... [{1_000_000 - 10_000} characters truncated]") for line in big)
    assert max(len(line["msg"]) for line in logs) < 10_000 + 100
    note = re.fullmatch(r"\[(\d+) more log lines dropped: WEFT_MAX_LOG_LINES is 1000\]", logs[-1]["msg"])
    assert note and int(note.group(1)) >= 1_000_000 + 40 - 1000
    grew_mb = (step.output["rss_peak"] - step.output["rss_start"]) / 1e6
    print(f"flood: worker RSS {step.output['rss_start'] / 1e6:.1f} MB -> peak {step.output['rss_peak'] / 1e6:.1f} MB "
          f"(+{grew_mb:.1f} MB) while writing 40 MB in 40 lines and 1,000,000 short lines")
    assert grew_mb < 30, f"the worker grew by {grew_mb:.1f} MB"
    assert MAX_MESSAGE_CHARS == 10_000
