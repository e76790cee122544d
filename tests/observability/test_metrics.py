"""Metrics after runs executed in-process by the real executor, the database gauges, and who may read /metrics."""

from __future__ import annotations

import pytest
from django.test import Client
from django.utils import timezone

from engine.models import WorkerProcess
from engine.services.scheduler import run_start
from engine.services.workflows import workflow_save
from tests.conftest import definition, node
from tests.observability.helpers import delta, scrape, value

pytestmark = pytest.mark.django_db

NO_BACKOFF = {"max_attempts": 2, "backoff_s": 0, "jitter": 0}


def start(defn, **inputs):
    workflow, _, _ = workflow_save(definition=defn)
    run, _ = run_start(workflow=workflow, inputs=inputs)
    return run


def test_a_run_counts_attempts_by_queue_node_type_and_outcome(client, drain):
    before = scrape(client)
    start(definition("counted", [
        node("a"),
        node("flaky", "obs.fail_once", queue="fast", retry=NO_BACKOFF),
        node("broken", "tests.raise", retry={"max_attempts": 1}),
    ], [("a", "flaky")]))
    drain()
    after = scrape(client)
    started = "weft_steps_started_total"
    finished = "weft_steps_finished_total"
    assert delta(before, after, started, queue="default", node_type="python") == 2
    assert delta(before, after, started, queue="fast", node_type="python") == 2
    assert delta(before, after, finished, queue="default", node_type="python", outcome="succeeded") == 1
    assert delta(before, after, finished, queue="default", node_type="python", outcome="failed") == 1
    assert delta(before, after, finished, queue="fast", node_type="python", outcome="failed") == 1
    assert delta(before, after, finished, queue="fast", node_type="python", outcome="succeeded") == 1
    assert delta(before, after, "weft_step_retries_total", queue="fast", node_type="python") == 1
    assert delta(before, after, "weft_step_retries_total", queue="default", node_type="python") == 0
    assert delta(before, after, "weft_step_duration_seconds_count", queue="fast", node_type="python") == 2
    assert delta(before, after, "weft_step_queue_wait_seconds_count", queue="fast") == 2
    assert delta(before, after, "weft_step_duration_seconds_bucket", queue="default", node_type="python",
                 le="+Inf") == 2


def test_lost_attempts_recovered_are_counted(client, drain, settings):
    from django.db.models.functions import Now

    from engine.models import StepRun
    from engine.worker.claim import step_claim
    from engine.worker.recovery import recover_once

    run = start(definition("lost", [node("a", retry=NO_BACKOFF)], []))
    step = StepRun.objects.get(run=run)
    assert step_claim(run_id=run.pk, step_id=step.pk, attempt=1, worker="gone:1") is not None
    StepRun.objects.filter(pk=step.pk).update(lease_expires_at=Now())  # its worker died: the lease runs out
    before = scrape(client)
    recover_once()
    drain()
    after = scrape(client)
    assert delta(before, after, "weft_attempts_lost_total", queue="default", node_type="python") == 1
    assert delta(before, after, "weft_steps_finished_total", queue="default", node_type="python",
                 outcome="lost") == 1
    assert delta(before, after, "weft_step_retries_total", queue="default", node_type="python") == 1
    assert delta(before, after, "weft_steps_finished_total", queue="default", node_type="python",
                 outcome="succeeded") == 1


def test_llm_tokens_are_counted_by_model(client, drain, allow_loopback, chat_server):
    before = scrape(client)
    start(definition("tokens", [{"id": "ask", "type": "llm", "config": {
        "base_url": chat_server.url + "/v1", "model": "gpt-4o-mini", "prompt": "hello"}}], []))
    drain()
    after = scrape(client)
    # The loopback model server reports 10 prompt tokens per message (one here) and 5 completion tokens.
    assert delta(before, after, "weft_llm_tokens_total", model="gpt-4o-mini", kind="prompt") == 10
    assert delta(before, after, "weft_llm_tokens_total", model="gpt-4o-mini", kind="completion") == 5


def test_database_gauges_show_queues_runs_and_live_clusters(client, settings):
    start(definition("waiting", [node("a"), node("b", queue="fast")], []))
    now = timezone.now()
    WorkerProcess.objects.create(host="h", pid=1, queue="fast", workers=3, started_at=now, last_seen=now)
    samples = scrape(client)
    assert value(samples, "weft_database_up") == 1
    assert value(samples, "weft_queue_depth", queue="default") == 1
    assert value(samples, "weft_queue_depth", queue="fast") == 1
    assert value(samples, "weft_queue_oldest_waiting_seconds", queue="default") >= 0
    assert value(samples, "weft_queue_clusters_online", queue="fast") == 1
    assert value(samples, "weft_queue_workers_online", queue="fast") == 3
    assert value(samples, "weft_queue_clusters_online", queue="slow") == 0
    assert value(samples, "weft_runs", status="running") == 1
    assert value(samples, "weft_runs", status="succeeded") == 0


def test_metrics_from_other_processes_files_are_merged(client, settings, tmp_path):
    """Worker processes write to WEFT_METRICS_DIR; /metrics adds them to this process's own counts."""
    import subprocess
    import sys

    directory = tmp_path / "shared"
    directory.mkdir()
    code = (f"import os; os.environ['PROMETHEUS_MULTIPROC_DIR'] = {str(directory)!r}\n"
            "from engine.observability import metrics\n"
            "metrics.attempt_started(queue='merged', node_type='python', queued_at=None)\n"
            "metrics.attempt_started(queue='merged', node_type='python', queued_at=None)\n")
    for _ in range(2):  # two processes, two files
        subprocess.run([sys.executable, "-c", code], check=True, cwd=settings.BASE_DIR)
    from engine.observability import metrics

    metrics.attempt_started(queue="merged", node_type="python", queued_at=None)
    settings.WEFT_METRICS_DIR = directory
    samples = scrape(client)
    assert value(samples, "weft_steps_started_total", queue="merged", node_type="python") == 5


class TestAccess:
    def test_loopback_may_read_metrics_by_default(self, client):
        assert client.get("/metrics").status_code == 200

    def test_other_addresses_are_refused_without_a_token(self):
        response = Client(REMOTE_ADDR="203.0.113.9").get("/metrics")
        assert response.status_code == 403
        assert response.json()["error"]["code"] == "permission_denied"

    def test_the_bearer_token_opens_metrics_from_anywhere(self, settings):
        settings.WEFT_METRICS_TOKEN = "s3cret-token"
        remote = Client(REMOTE_ADDR="203.0.113.9")
        assert remote.get("/metrics", HTTP_AUTHORIZATION="Bearer s3cret-token").status_code == 200
        wrong = remote.get("/metrics", HTTP_AUTHORIZATION="Bearer nope")
        assert wrong.status_code == 401
        assert wrong["WWW-Authenticate"].startswith("Bearer")
        assert remote.get("/metrics").status_code == 401

    def test_allowed_ranges_are_configurable(self, settings):
        settings.WEFT_METRICS_ALLOWED_IPS = ["10.0.0.0/8"]
        assert Client(REMOTE_ADDR="10.1.2.3").get("/metrics").status_code == 200
        assert Client(REMOTE_ADDR="127.0.0.1").get("/metrics").status_code == 403

    def test_metrics_need_no_login(self, client):
        response = client.get("/metrics")
        assert response.status_code == 200
        assert response["Content-Type"].startswith("text/plain")
        assert b"# TYPE weft_steps_started_total counter" in response.content
