"""Map with real worker processes: max_parallel holds across every worker, the output keeps item order."""

from __future__ import annotations

import json

import pytest

from engine.models import StepRun
from engine.services.scheduler import run_start
from engine.services.workflows import workflow_save
from tests.conftest import TEST_QUEUES, definition, finished, node, wait_for
from tests.fakes.servers import InFlightServer

pytestmark = [pytest.mark.workers, pytest.mark.django_db(transaction=True)]

ITEMS = 12
MAX_PARALLEL = 3


def test_max_parallel_is_never_exceeded_with_more_workers_than_slots(workers):
    server = InFlightServer(hold_s=0.3).start()
    try:
        d = definition("map-par", [
            node("source", kwargs={"xs": "{{ inputs.xs }}"}),
            {**node("each", "tests.http_effect", kwargs={"url": server.url + "/work"}),
             "for_each": "{{ nodes.source.output.xs }}", "max_parallel": MAX_PARALLEL},
        ], [("source", "each")])
        wf = workflow_save(definition=d)[0]
        # Eight workers on the queue: only the map's slots can hold the requests at three.
        workers.env["WEFT_QUEUES"] = json.dumps({**TEST_QUEUES, "default": {**TEST_QUEUES["default"], "workers": 8}})
        workers.start(queues="default")
        run, _ = run_start(workflow=wf, inputs={"xs": list(range(ITEMS))})
        run = wait_for(finished(run.pk), timeout=120, message="the mapped run to finish")
    finally:
        server.stop()
    assert run.status == "succeeded", run.error
    assert len(server.requests) == ITEMS
    assert server.max_in_flight == MAX_PARALLEL
    output = StepRun.objects.get(run=run, node_id="each").output
    assert [item["results"][0]["args"]["node"] for item in output] == [f"each[{i}]" for i in range(ITEMS)]
