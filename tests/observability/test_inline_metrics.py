"""Steps of inline types (transform, branch) run in the scheduler's transaction, not in a worker's attempt:
they count in the step metrics all the same, with the same labels, wherever they run."""

from __future__ import annotations

import pytest
from django.test import Client

from engine.models import Run
from engine.services.scheduler import run_start
from engine.services.workflows import workflow_save
from tests.conftest import definition, wait_for
from tests.observability.helpers import delta, scrape

pytestmark = pytest.mark.workers

TRANSFORM = {"type": "transform", "config": {"template": {"ok": True}}}
NOOP = {"type": "noop", "config": {}}


def run_to_the_end(slug: str, nodes: list[dict], edges: list[tuple]) -> None:
    workflow, _, _ = workflow_save(definition=definition(slug, nodes, edges))
    run, _ = run_start(workflow=workflow, inputs={})
    wait_for(lambda: Run.objects.get(pk=run.pk).status in ("succeeded", "failed"), timeout=60,
             message=f"the run of {slug} to finish")
    assert Run.objects.get(pk=run.pk).status == "succeeded"


def test_inline_steps_count_as_started_and_finished_wherever_they_run(workers, worker_env, settings):
    settings.WEFT_METRICS_DIR = worker_env["WEFT_METRICS_DIR"]
    client = Client()
    workers.start(queues="fast")
    wait_for(lambda: client.get("/readyz").json()["checks"]["queues"].get("missing") == ["default", "slow"],
             timeout=30, message="the fast cluster to heartbeat")

    def counts(before: dict, after: dict) -> dict:
        return {(node_type, name): delta(before, after, name, queue="fast", node_type=node_type, **labels)
                for node_type in ("transform", "noop")
                for name, labels in (("weft_steps_started_total", {}),
                                     ("weft_steps_finished_total", {"outcome": "succeeded"}),
                                     ("weft_step_duration_seconds_count", {}))}

    each_once = {(node_type, name): 1.0 for node_type in ("transform", "noop")
                 for name in ("weft_steps_started_total", "weft_steps_finished_total",
                              "weft_step_duration_seconds_count")}

    # The transform runs when the run starts, in this process (a web server's).
    before = scrape(client)
    run_to_the_end("inline-first", [{"id": "shape", **TRANSFORM}, {"id": "after", **NOOP}], [("shape", "after")])
    assert counts(before, scrape(client)) == each_once

    # The transform runs when the noop before it finishes, in the worker that ran the noop.
    before = scrape(client)
    run_to_the_end("inline-after", [{"id": "before", **NOOP}, {"id": "shape", **TRANSFORM}], [("before", "shape")])
    assert counts(before, scrape(client)) == each_once
