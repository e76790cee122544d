"""Nodes on real worker processes: an agent SIGKILLed mid-tool-call, sleep and approval across restarts."""

from __future__ import annotations

import os
import random
import signal
import time

import pytest
from django.db.models.functions import Now

from engine.core.journal import idempotency_key
from engine.models import Attempt, StepRun
from engine.services.scheduler import run_start, step_approve
from engine.services.workflows import workflow_save
from tests.conftest import definition, finished, node, wait_for
from tests.fakes.servers import ChatServer

pytestmark = [pytest.mark.workers, pytest.mark.django_db(transaction=True)]

TOOL_CALLS = 30


def step_status(run, node_id, status, reason=None):
    def check():
        s = StepRun.objects.get(run=run, node_id=node_id)
        return s.status == status and (reason is None or s.waiting_reason == reason)

    return check


def test_agent_killed_at_a_random_tool_call_resumes_without_repeating_effects_or_model_calls(allow_loopback, workers,
                                                                                          tool_server):
    seed = random.randrange(1_000_000)
    kill_at = random.Random(seed).randint(2, TOOL_CALLS - 1)
    print(f"seed {seed}: SIGKILL during tool call {kill_at} of {TOOL_CALLS}")
    tool_server.hold_at = kill_at
    chat = ChatServer(tool_calls_total=TOOL_CALLS, calls_per_turn=3).start()
    try:
        agent = {"id": "agent", "type": "agent", "retry": {"max_attempts": 3, "backoff_s": 0, "jitter": 0},
                 "config": {"base_url": chat.url + "/v1", "model": "gpt-4o-mini", "prompt": "apply 30 effects",
                            "max_turns": 20,
                            "tools": [{"name": "effect", "type": "http", "url": tool_server.url + "/effect",
                                       "safe_to_repeat": True}]}}
        wf = workflow_save(definition=definition("agent-crash", [agent], []))[0]
        workers.start()
        run, _ = run_start(workflow=wf)
        assert tool_server.held.wait(timeout=90), "the agent never reached the tool call to kill it at"
        victim = StepRun.objects.get(run=run).worker
        os.kill(int(victim.rsplit(":", 1)[1]), signal.SIGKILL)
        killed_at = time.monotonic()
        tool_server.release()
        run = wait_for(finished(run.pk), timeout=120, message="agent run after the kill")
        print(f"run finished {time.monotonic() - killed_at:.1f} s after the kill")
        asks = chat.asks_per_key()
    finally:
        chat.stop()
    step = StepRun.objects.get(run=run)
    assert run.status == "succeeded", step.error
    assert step.output["tool_calls"] == TOOL_CALLS and step.output["turns"] == TOOL_CALLS // 3 + 1
    outcomes = list(Attempt.objects.filter(step=step).values_list("outcome", flat=True))
    assert outcomes[0] == "lost" and outcomes[-1] == "succeeded"
    # Each tool call's effect happened exactly once, under the key of its journal entry.
    keys = [idempotency_key(run_id=run.pk, node_id="agent", generation=0, key=f"tool-{n}-effect")
            for n in range(1, TOOL_CALLS + 1)]
    assert dict(tool_server.effects) == dict.fromkeys(keys, 1)
    sent = [r["headers"]["idempotency-key"] for r in tool_server.requests if r["path"] == "/effect"]
    assert sent.count(keys[kill_at - 1]) == 2  # the call cut off by the kill was sent again, same key
    assert len(sent) == TOOL_CALLS + 1
    # The model was never asked again for a turn already journaled.
    assert len(asks) == TOOL_CALLS // 3 + 1 and set(asks.values()) == {1}


def test_sleep_and_approval_survive_a_worker_restart(workers, tmp_path):
    log = tmp_path / "log"
    d = definition("restarts", [{"id": "nap", "type": "sleep", "config": {"seconds": 3}},
                                {"id": "ok", "type": "approval", "config": {"message": "go on?"}},
                                node("after", "tests.count", kwargs={"path": str(log)})],
                   [("nap", "after"), ("ok", "after")])
    wf = workflow_save(definition=d)[0]
    workers.start()
    run, _ = run_start(workflow=wf)
    wait_for(step_status(run, "nap", "waiting", "sleep"), timeout=60, message="sleep to start waiting")
    wait_for(step_status(run, "ok", "waiting", "approval"), timeout=60, message="approval to be asked")
    workers.stop()
    step_approve(run_id=run.pk, node_id="ok", comment="yes", actor="alice")  # decided while no worker runs
    wait_for(lambda: StepRun.objects.filter(run=run, node_id="nap", wake_at__lte=Now()).exists(),
             timeout=30, message="the timer to fall due while no worker runs")
    assert StepRun.objects.get(run=run, node_id="nap").status == "waiting"
    workers.start()
    run = wait_for(finished(run.pk), timeout=60, message="run to finish after the restart")
    assert run.status == "succeeded"
    assert StepRun.objects.get(run=run, node_id="nap").output["slept_until"]
    assert StepRun.objects.get(run=run, node_id="ok").output == {"approved": True, "comment": "yes", "by": "alice"}
    assert log.read_text().split() == ["after"]
    # One attempt each: nothing held a worker while waiting. The approval's attempt ends with the decision.
    attempts = Attempt.objects.filter(step__run=run, step__node_id__in=["nap", "ok"])
    assert sorted(attempts.values_list("step__node_id", "outcome")) == [("nap", "waiting"), ("ok", "succeeded")]
