"""Load: many concurrent runs while 20 clients' websockets watch the run list and a sample of runs, against a
real daphne process, real workers and the real channel layer (channels-postgres).

Every client must end with exactly the database's state: each run's status on the run list (every run.*
event seen once), and for each run it watches, every event applied once in seq order (a gap on the socket is
filled from the event log, as the browser does) and every step's status equal to its StepRun row.

In the suite: WEFT_LOAD_RUNS (default 100) runs. With --soak: 500 runs, then a 10-minute soak (WEFT_SOAK_S)
of new runs while every process's resident memory is sampled.
"""

from __future__ import annotations

import os
import random
import time
from collections import Counter, defaultdict

import psutil
import pytest
from django.conf import settings
from django.contrib.auth.models import Group, User
from django.test import Client

from engine.models import Event, Run, StepRun
from engine.operations.webserver import WebServer
from engine.services.scheduler import run_start
from engine.services.workflows import workflow_save
from tests.conftest import chain, wait_for
from tests.support.browsers import Browsers

pytestmark = [pytest.mark.workers, pytest.mark.chaos, pytest.mark.django_db(transaction=True)]

CLIENTS = 20
STEPS = 3


def viewer_cookie() -> str:
    user = User.objects.create_user("load-viewer", password="load-viewer-pw-1")
    user.groups.add(Group.objects.get_or_create(name="viewer")[0])
    client = Client()
    client.force_login(user)
    return f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}"


def db_state(run_ids) -> tuple[dict, dict, dict, dict]:
    """Per run: status, last_seq, {node: status}, and the seqs of its run.* events."""
    runs = dict(Run.objects.filter(pk__in=run_ids).values_list("pk", "status"))
    last = dict(Run.objects.filter(pk__in=run_ids).values_list("pk", "last_seq"))
    steps: dict = defaultdict(dict)
    for run_id, node_id, status in StepRun.objects.filter(run_id__in=run_ids).values_list(
            "run_id", "node_id", "status"):
        steps[str(run_id)][node_id] = status
    run_events: dict = defaultdict(list)
    for run_id, seq in Event.objects.filter(run_id__in=run_ids, type__startswith="run.").order_by(
            "run_id", "seq").values_list("run_id", "seq"):
        run_events[str(run_id)].append(seq)
    return ({str(k): v for k, v in runs.items()}, {str(k): v for k, v in last.items()}, steps, run_events)


def check_clients(browsers: list[dict], run_ids: list[str], server: WebServer) -> dict:
    """Assert every client's final state equals the database's; return the figures."""
    statuses, last_seq, steps, run_events = db_state(run_ids)
    figures = Counter()
    for b in browsers:
        assert b["list"]["errors"] == [] and b["list"]["hello"]
        for run_id in run_ids:
            # the run list saw each run.* event of each run exactly once, and ends on the run's status
            assert b["list"]["seqs"].get(run_id) == run_events[run_id], \
                (run_id, run_events[run_id], Counter(b["list"]["seqs"].get(run_id, [])))
            assert b["list"]["status"][run_id] == statuses[run_id]
        figures["list_events"] += sum(len(s) for s in b["list"]["seqs"].values())
        for m in b["runs"]:
            if m["run_id"] not in last_seq:
                continue
            assert m["errors"] == [], m["errors"]
            assert m["snapshot_seq"] is not None
            # every event after the snapshot applied once, in order, up to the database's last one
            assert m["applied"] == list(range(m["snapshot_seq"] + 1, last_seq[m["run_id"]] + 1)), m
            assert len(m["received"]) == len(set(m["received"])), "the socket delivered a seq twice"
            assert m["run_status"] == statuses[m["run_id"]]
            assert m["steps"] == steps[m["run_id"]]
            figures["run_sockets"] += 1
            figures["run_events"] += len(m["applied"])
            figures["caught_up"] += m["caught_up"]
            figures["gaps"] += m["gaps"]
        assert b["closed_by_server"] == []
    log = server.log_path.read_text()
    assert "Traceback" not in log and "ERROR" not in log, log[-3000:]
    return dict(figures)


def rss_of(pids) -> dict[int, int]:
    out = {}
    for pid in pids:
        try:
            out[pid] = psutil.Process(pid).memory_info().rss
        except psutil.NoSuchProcess:
            continue
    return out


def describe(pid: int) -> str:
    try:
        p = psutil.Process(pid)
        return f"{pid} {' '.join(p.cmdline()[-3:])[:60]}"
    except psutil.NoSuchProcess:
        return str(pid)


def load_scenario(worker_env, workers, tmp_path, *, runs: int, watch_per_client: int, soak_s: float = 0) -> dict:
    env = dict(worker_env, WEFT_SECRET_KEY=settings.SECRET_KEY)
    rng = random.Random(20261201)
    wf = workflow_save(definition=chain("load", STEPS))[0]
    server = WebServer(env, tmp_path / "daphne.log").start()
    browsers = None
    try:
        browsers = Browsers(server.url, viewer_cookie(), CLIENTS, tmp_path / "clients.log")
        started = time.monotonic()
        run_ids = [str(run_start(workflow=wf, inputs={"i": i})[0].pk) for i in range(runs)]
        start_s = time.monotonic() - started
        sample = rng.sample(run_ids, min(len(run_ids), CLIENTS * watch_per_client))
        browsers.watch({i: sample[i * watch_per_client:(i + 1) * watch_per_client] for i in range(CLIENTS)})
        workers.start(queues="default")
        wait_for(lambda: Run.objects.filter(pk__in=run_ids, status="succeeded").count() == runs,
                 timeout=60 + runs * 1.0, interval=0.5, message=f"{runs} runs to succeed")
        done_s = time.monotonic() - started
        last = {str(k): v for k, v in Run.objects.filter(pk__in=run_ids).values_list("pk", "last_seq")}

        def clients_caught_up():
            p = browsers.progress()
            return all(
                all(seqs.get(r, 0) >= 2 and status.get(r) == "succeeded" for r in run_ids)
                and all(seq >= last[r] for r, seq in watched.items())
                for seqs, status, watched in zip(p["list_runs"], p["list_status"], p["last_seq"], strict=True))

        print(f"\n{runs} runs succeeded after {done_s:.1f} s")
        try:
            wait_for(clients_caught_up, timeout=60, interval=0.5, message="every client to show the final state")
        except AssertionError:
            check_clients(browsers.state(), run_ids, server)  # says what differs
            raise
        caught_up_s = time.monotonic() - started
        figures = check_clients(browsers.state(), run_ids, server)
        figures.update(runs=runs, steps=runs * STEPS, clients=CLIENTS,
                       events=Event.objects.filter(run_id__in=run_ids).count(), start_s=round(start_s, 1),
                       done_s=round(done_s, 1), clients_final_s=round(caught_up_s, 1))
        if soak_s:
            figures.update(soak(browsers, wf, server, workers, rng, soak_s))
        return figures
    finally:
        if browsers is not None:
            browsers.close()
        server.stop()


def soak(browsers: Browsers, wf, server, workers, rng, soak_s: float) -> dict:
    """Keep runs flowing for ``soak_s`` while browsers move between run views; sample every process's RSS."""
    samples: dict[int, list[tuple[float, int]]] = defaultdict(list)
    started = time.monotonic()
    watching = {i: [] for i in range(CLIENTS)}
    all_runs: list[str] = []
    waves = 0

    def sample():
        t = time.monotonic() - started
        pids = [server.proc.pid, browsers.proc.pid, os.getpid(), *workers.all_pids()]
        for pid, rss in rss_of(pids).items():
            samples[pid].append((t, rss))

    sample()
    while time.monotonic() - started < soak_s:
        wave = [str(run_start(workflow=wf, inputs={"wave": waves, "i": i})[0].pk) for i in range(25)]
        all_runs += wave
        waves += 1
        # each browser leaves its oldest run view and opens one on the new wave, as a person clicking around
        browsers.unwatch({i: runs[:1] for i, runs in watching.items() if len(runs) >= 3})
        for runs in watching.values():
            if len(runs) >= 3:
                runs.pop(0)
            runs.append(rng.choice(wave))
        browsers.watch({i: runs[-1:] for i, runs in watching.items()})
        wait_for(lambda: Run.objects.filter(pk__in=wave, status="succeeded").count() == len(wave),  # noqa: B023
                 timeout=120, interval=0.2, message="a soak wave to succeed")
        sample()
    last = {str(k): v for k, v in Run.objects.filter(pk__in=all_runs).values_list("pk", "last_seq")}

    def caught_up():
        p = browsers.progress()
        return all(all(status.get(r) == "succeeded" for r in all_runs)
                   and all(seq >= last[r] for r, seq in watched.items() if r in last)
                   for status, watched in zip(p["list_status"], p["last_seq"], strict=True))

    try:
        wait_for(caught_up, timeout=60, interval=0.5, message="soak clients to catch up")
    except AssertionError:
        check_clients(browsers.state(), all_runs, server)  # says what differs
        raise
    soak_figures = check_clients(browsers.state(), all_runs, server)
    # Memory is flat: after a warm-up (the first fifth of the soak), no Weft process (web server, every
    # worker process, this test's process) grows by more than 10 MB or 10 %, whichever is larger. The
    # clients' process is reported, not bound: it keeps every event it saw, to be checked above.
    growth, clients = {}, None
    for pid, points in samples.items():
        warm = [rss for t, rss in points if t >= soak_s / 5]
        if len(warm) < 3:
            continue
        base, end = warm[0], max(warm[-3:])
        figures = (round(base / 2**20, 1), round((end - base) / 2**20, 1))
        if pid == browsers.proc.pid:
            clients = figures
        else:
            growth[describe(pid)] = figures
    print(f"\nsoak RSS (MB at warm-up, MB growth); the clients' process: {clients}")
    for who, (base, delta) in sorted(growth.items()):
        print(f"  {who}: {base} {delta:+}")
    for who, (base, delta) in growth.items():
        assert delta <= max(10.0, base * 0.10), f"{who} grew {delta} MB from {base} MB"
    return {"soak_s": round(time.monotonic() - started), "soak_runs": len(all_runs), "soak_waves": waves,
            "soak_run_sockets": soak_figures.get("run_sockets"), "soak_list_events": soak_figures.get("list_events"),
            "rss_growth_mb": {k: v[1] for k, v in growth.items()}, "clients_rss_mb": clients}


def test_concurrent_runs_reach_every_websocket_client_exactly_once(worker_env, workers, tmp_path):
    runs = int(os.environ.get("WEFT_LOAD_RUNS", "100"))
    figures = load_scenario(worker_env, workers, tmp_path, runs=runs, watch_per_client=5)
    print(f"\nload: {figures}")
    assert figures["run_sockets"] == min(runs, CLIENTS * 5)


@pytest.mark.soak
@pytest.mark.timeout(3600)
def test_soak_500_runs_20_clients_and_flat_memory(worker_env, workers, tmp_path):
    figures = load_scenario(worker_env, workers, tmp_path, runs=500, watch_per_client=10,
                            soak_s=float(os.environ.get("WEFT_SOAK_S", "600")))
    print(f"\nsoak: {figures}")
    assert figures["soak_runs"] > 0
