"""Chaos, multi-host: a worker host cut off from Postgres for longer than the lease.

Host A (its own network namespace, reaching Postgres through a veth link) runs the step and is cut
off in the middle of its side effect. Host B (this namespace) recovers the step and runs it again
with the same idempotency key. When the link returns, A's late result is refused by the fencing
token, and the outside system applied the effect once.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest
from django.conf import settings

from engine.models import Attempt, Run, StepRun
from engine.services.scheduler import run_start
from engine.services.workflows import workflow_save
from tests.conftest import REPO, Workers, definition, node, wait_for
from tests.support.effects import EffectServer
from tests.support.netns import NetnsHost, TcpProxy, netns_supported

pytestmark = [pytest.mark.workers, pytest.mark.chaos, pytest.mark.django_db(transaction=True)]

LEASE_S = 3


@pytest.fixture
def host_a():
    if os.geteuid() != 0 or not netns_supported():
        pytest.skip("needs root and network namespaces (ip netns)")
    host = NetnsHost(subnet=(os.getpid() % 200) + 20)
    yield host
    host.close()


def test_partitioned_worker_is_fenced_out_and_effect_applies_once(host_a, worker_env, tmp_path):
    db = settings.DATABASES["default"]
    proxy = TcpProxy(host_a.host_ip, (db.get("HOST") or "127.0.0.1", int(db.get("PORT") or 5432)))
    # Short TCP timeouts so a cut-off connection fails in seconds, not minutes.
    url_a = (f"postgresql://{db['USER']}@{host_a.host_ip}:{proxy.port}/{db['NAME']}"
             "?connect_timeout=3&keepalives_idle=2&keepalives_interval=1&keepalives_count=2&tcp_user_timeout=4000")
    log_a = tmp_path / "host-a.log"
    with EffectServer(host=host_a.host_ip, hold_first=True) as effects:
        wf = workflow_save(definition=definition("partition", [node(
            "charge", "tests.http_effect", kwargs={"url": effects.url},
            retry={"max_attempts": 5, "backoff_s": 0})], []))[0]
        env_a = dict(worker_env, DATABASE_URL=url_a)
        a = subprocess.Popen([*host_a.prefix, sys.executable, str(REPO / "manage.py"), "runworkers",
                              "--queues", "default", "--no-recovery"], cwd=REPO, env=env_a,
                             stdout=log_a.open("w"), stderr=subprocess.STDOUT, start_new_session=True)
        b = Workers(worker_env)
        try:
            run, _ = run_start(workflow=wf)
            assert effects.first_received.wait(60), "host A never made the call"
            step = StepRun.objects.get(run=run)
            assert step.status == "running" and step.attempt == 1
            host_a.down()  # A is cut off mid-call, its effect already applied outside
            cut_at = time.time()
            b.start()
            step = wait_for(lambda: StepRun.objects.filter(run=run, status="succeeded").first(), timeout=60,
                            interval=0.1, message="host B to recover and finish the step")
            recovered_s = time.time() - cut_at
            assert step.attempt >= 2
            host_a.up()
            effects.release()  # A's call now returns; A tries to record a result it no longer owns
            wait_for(lambda: "fenced out" in log_a.read_text() or "lost its lease" in log_a.read_text()
                     or "no longer held" in log_a.read_text(), timeout=60, interval=0.5,
                     message="host A to notice it was fenced out")
        finally:
            host_a.up()
            b.stop()
            os.killpg(a.pid, 9)
            a.wait()
            proxy.close()
        step.refresh_from_db()
        attempts = list(Attempt.objects.filter(step=step).order_by("number").values_list("number", "outcome"))
        print(f"\npartition: step recovered by host B {recovered_s:.1f} s after the cut (lease {LEASE_S} s); "
              f"attempts {attempts}; deliveries {dict(effects.deliveries)}")
        assert Run.objects.get(pk=run.pk).status == "succeeded"
        assert attempts[0] == (1, "lost") and attempts[-1][1] == "succeeded"
        assert StepRun.objects.get(pk=step.pk).attempt == attempts[-1][0]  # A's late write changed nothing
        [(key, count)] = effects.deliveries.items()
        assert count == 2 and effects.applied[key] == 1  # same idempotency key both times, applied once
