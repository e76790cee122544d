"""Chaos: the same broker message processed twice at the same moment executes the step once."""

from __future__ import annotations

import threading

import pytest
from django.db import connection
from django_q.models import OrmQ
from django_q.signing import SignedPackage

from engine.models import Attempt, Run
from engine.services.scheduler import run_start
from engine.services.workflows import workflow_save
from engine.worker.executor import execute_step
from tests.conftest import definition, node

pytestmark = [pytest.mark.chaos, pytest.mark.django_db(transaction=True)]


@pytest.mark.parametrize("copies", [2, 8])
def test_concurrent_duplicate_deliveries_execute_once(tmp_path, copies):
    log = tmp_path / "log"
    wf = workflow_save(definition=definition("dup-conc", [node("a", "tests.count", kwargs={"path": str(log)}),
                                                          node("b", "tests.count", kwargs={"path": str(log)})],
                                             [("a", "b")]))[0]
    run, _ = run_start(workflow=wf)
    args = SignedPackage.loads(OrmQ.objects.get().payload)["args"]
    barrier = threading.Barrier(copies)
    results = []

    def deliver():
        try:
            barrier.wait()
            results.append(execute_step(*args))
        finally:
            connection.close()

    threads = [threading.Thread(target=deliver) for _ in range(copies)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert sorted(results) == ["not claimed"] * (copies - 1) + ["succeeded"]
    assert log.read_text().split() == ["a", "b"]  # b ran by continuation on the winning worker only
    assert Attempt.objects.filter(step__run=run).count() == 2
    assert Run.objects.get(pk=run.pk).status == "succeeded"
