"""The engine's management commands, run as a user would (subprocesses against the test database)."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys

import psutil
import pytest
from django.db import connection

from engine.models import Run, Workflow
from engine.services.scheduler import run_start
from engine.services.workflows import workflow_save
from tests.conftest import REPO, chain, definition, node, wait_for

pytestmark = pytest.mark.django_db(transaction=True)


def manage(env, *args, stdin=None):
    return subprocess.run([sys.executable, str(REPO / "manage.py"), *args], cwd=REPO, env=env, input=stdin,
                          capture_output=True, text=True, timeout=120)


def test_workflow_import_export_round_trip(worker_env, tmp_path):
    d = chain("cli-chain", 3)
    path = tmp_path / "wf.json"
    path.write_text(json.dumps(d))
    out = manage(worker_env, "workflow", "import", str(path))
    assert out.returncode == 0, out.stderr
    assert "version 1" in out.stdout
    again = manage(worker_env, "workflow", "import", str(path))
    assert "unchanged at version 1" in again.stdout
    exported = manage(worker_env, "workflow", "export", "cli-chain")
    assert json.loads(exported.stdout) == d


def test_workflow_import_of_invalid_definition_lists_every_error_and_saves_nothing(worker_env, tmp_path):
    d = definition("cli-bad", [node("a"), node("a"), {"id": "b", "type": "nope"}], [("a", "zz")])
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(d))
    out = manage(worker_env, "workflow", "import", str(path))
    assert out.returncode == 2
    assert "two nodes have this id" in out.stderr and "nope" in out.stderr and "zz" in out.stderr
    assert not Workflow.objects.filter(slug="cli-bad").exists()
    bad_json = manage(worker_env, "workflow", "import", "-", stdin="{not json")
    assert bad_json.returncode == 2 and "not valid JSON" in bad_json.stderr


def _hostile(kind: str) -> bytes:
    good = json.dumps(definition("cli-hostile", [node("a")], []))
    if kind == "not_utf8":
        return good.replace("Cli Hostile", "Cli \xe9").encode("latin-1")
    if kind == "lone_surrogate":
        return good.replace("Cli Hostile", "Cli \\ud83d").encode("ascii")
    if kind == "huge_integer":
        return good.replace('"kwargs": {}', '"kwargs": {"n": ' + "9" * 5000 + "}").encode("ascii")
    return ("[" * 10_000 + "]" * 10_000).encode("ascii")  # too deep


HOSTILE = {"not_utf8": "not UTF-8", "lone_surrogate": "lone surrogate (U+D83D)", "huge_integer": "4300 digits",
           "too_deep": "nested deeper than 100 levels"}


@pytest.mark.parametrize("kind", sorted(HOSTILE))
def test_workflow_import_of_a_hostile_file_exits_2_with_one_line(worker_env, tmp_path, kind):
    path = tmp_path / f"{kind}.json"
    path.write_bytes(_hostile(kind))
    out = manage(worker_env, "workflow", "import", str(path))
    assert out.returncode == 2, out.stderr
    assert "Traceback" not in out.stderr and len(out.stderr.strip().splitlines()) == 1, out.stderr
    assert HOSTILE[kind] in out.stderr and str(path) in out.stderr
    assert not Workflow.objects.filter(slug="cli-hostile").exists()


@pytest.mark.workers
def test_run_start_wait_exits_zero_only_on_success(workers, worker_env, tmp_path):
    (tmp_path / "ok.json").write_text(json.dumps(definition("cli-ok", [node("a", "tests.add",
                                                                            kwargs={"a": "{{ inputs.x }}", "b": 1})],
                                                            [])))
    (tmp_path / "bad.json").write_text(json.dumps(definition("cli-fail", [node("a", "tests.raise",
                                                                               retry={"max_attempts": 1})], [])))
    for name in ("ok", "bad"):
        assert manage(worker_env, "workflow", "import", str(tmp_path / f"{name}.json")).returncode == 0
    workers.start()
    ok = manage(worker_env, "run", "start", "cli-ok", "--input", '{"x": 41}', "--wait", "--timeout", "60")
    assert ok.returncode == 0, ok.stderr
    assert "status: succeeded" in ok.stdout and '"sum": 42' in ok.stdout
    bad = manage(worker_env, "run", "start", "cli-fail", "--wait", "--timeout", "60")
    assert bad.returncode == 1
    assert "status: failed" in bad.stdout and "step a failed" in bad.stderr


def test_runworkers_refuses_unknown_queue(worker_env):
    out = manage(worker_env, "runworkers", "--queues", "default,nosuch")
    assert out.returncode == 2
    assert "nosuch" in out.stderr and len(out.stderr.strip().splitlines()) == 1


def _clusters(workers) -> dict[str, int]:
    """queue -> pid of the main qcluster process runworkers started for it."""
    clusters = {}
    for child in psutil.Process(workers.proc.pid).children():
        with contextlib.suppress(psutil.Error):
            if child.is_running() and child.status() != psutil.STATUS_ZOMBIE:
                clusters[child.environ().get("Q_CLUSTER_NAME")] = child.pid
    return clusters


@pytest.mark.workers
def test_runworkers_restarts_a_cluster_that_dies_and_stops_what_it_left(workers):
    workers.start()

    def all_up():
        clusters = _clusters(workers)
        return clusters if set(clusters) == {"default", "fast", "slow"} else None

    before = wait_for(all_up, timeout=60, message="one cluster per queue")
    wait_for(lambda: len(psutil.Process(before["fast"]).children(recursive=True)) >= 5, timeout=60,
             message="the fast cluster's sentinel, monitor, pusher and workers")
    left_behind = psutil.Process(before["fast"]).children(recursive=True)
    os.kill(before["fast"], signal.SIGKILL)

    def running(procs):
        return [p.pid for p in procs if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]

    # Orphaned, the dead cluster's sentinel and workers would go on taking tasks, and outlive runworkers.
    wait_for(lambda: not running(left_behind), timeout=30, message=f"{running(left_behind)} to be stopped")
    gone = {before["fast"], *(p.pid for p in left_behind)}

    def fast_replaced():
        clusters = _clusters(workers)
        return clusters if clusters.get("fast") not in (None, *gone) else None

    after = wait_for(fast_replaced, timeout=60, message="the fast cluster to be started again")
    assert after["default"] == before["default"] and after["slow"] == before["slow"]
    wf = workflow_save(definition=definition("after-restart", [node("a", queue="fast")], []))[0]
    run, _ = run_start(workflow=wf)
    wait_for(lambda: Run.objects.filter(pk=run.pk, status="succeeded").exists(), timeout=60,
             message="a fast step on the restarted cluster")


def test_bench_prints_the_figures_it_promises_as_json(worker_env):
    """`manage.py bench` (docs/benchmarks.md): real workers, one JSON object per workload, medians with min and
    max and the ratio to the commit floor measured in the same invocation; with ``--durability both``, one for
    strict and one for relaxed workflows, the relaxed one with its ratio to strict's. No figure is judged here."""
    inspectable = wal_inspectable()
    result = manage(worker_env, "bench", "chain", "--runs", "2", "--durability", "both", "--json")
    assert result.returncode == 0, result.stderr[-3000:]
    strict, relaxed = (json.loads(line) for line in result.stdout.strip().splitlines()[-2:])
    for figures, durability in ((strict, "strict"), (relaxed, "relaxed")):
        assert figures["workload"] == "chain" and figures["runs"] == 2 and figures["durability"] == durability
        for key in ("per_step_ms", "steps_per_s", "wall_s"):
            assert set(figures[key]) == {"median", "min", "max"}
            assert 0 < figures[key]["min"] <= figures[key]["median"] <= figures[key]["max"]
        assert figures["floor_ms"] > 0
        ratio = figures["per_step_ms"]["median"] / figures["floor_ms"]  # both rounded in the JSON
        assert figures["per_step_ratio_to_floor"] == pytest.approx(ratio, rel=0.01)
        cpu = ("workers_cpu_ms_per_step", "postgres_cpu_ms_per_step", "bench_cpu_ms_per_step")
        wal = ("commits_per_step", "wal_bytes_per_step")
        for key in (*cpu, *wal) if inspectable else cpu:  # a step's cost: medians with min and max over the two samples
            assert set(figures[key]) == {"median", "min", "max"}
            # /proc counts the workers' and PostgreSQL's CPU in ticks of 10 ms: a 30-step sample's can be none
            floor = 0 if key in cpu[:2] else 1e-9
            assert floor <= figures[key]["min"] <= figures[key]["median"] <= figures[key]["max"], key
        if not inspectable:
            assert figures["commits_per_step"] is None and figures["wal_bytes_per_step"] is None
    assert "per_step_ratio_to_strict" not in strict
    assert relaxed["per_step_ratio_to_strict"] == pytest.approx(
        relaxed["per_step_ms"]["median"] / strict["per_step_ms"]["median"], rel=0.01)
    for slug, durability in (("bench-chain", "strict"), ("bench-chain-relaxed", "relaxed")):  # warm-up + 2 each
        runs = Run.objects.filter(workflow__slug=slug).order_by()
        assert list(runs.values_list("status", "durability").distinct()) == [("succeeded", durability)]
        assert runs.count() == 3
    bad = manage(worker_env, "bench", "chain", "--runs", "0")
    assert bad.returncode == 2 and "--runs must be at least 1" in bad.stderr


def test_bench_prints_what_a_step_costs(worker_env):
    """A workload with a per-step time also prints its commits, WAL bytes and CPU per step (docs/benchmarks.md):
    the CPU figures are above zero for 200 runs of five no-op steps (seconds of CPU, many 10-ms ticks of /proc's),
    and so are the bench database's commits and WAL where the server has pg_walinspect (elsewhere they are n/a,
    and the bench says why)."""
    inspectable = wal_inspectable()
    result = manage(worker_env, "bench", "many", "--runs", "1")
    assert result.returncode == 0, result.stderr[-3000:]
    line = next(line for line in result.stdout.splitlines() if line.startswith("  cost "))
    match = re.fullmatch(r"  cost +([\d.]+|n/a) commits/step, ([\d,]+|n/a) WAL bytes/step; CPU/step: workers "
                         r"([\d.]+) ms, postgres ([\d.]+) ms, bench ([\d.]+) ms", line)
    assert match, line
    commits, wal_bytes, workers, postgres, bench = (None if g == "n/a" else float(g.replace(",", ""))
                                                    for g in match.groups())
    assert workers > 0 and postgres > 0 and bench > 0
    if inspectable:
        assert commits >= 1  # a chained step's success is a transaction of its own
        assert wal_bytes > 0
    else:  # says why, and goes on with the rest
        assert commits is None and wal_bytes is None
        assert "commits and WAL bytes per step will not be measured: pg_walinspect" in result.stderr


def wal_inspectable() -> bool:
    """Whether the server has pg_walinspect (PostgreSQL's contrib; the embedded server of `make test-embedded` has
    none): without it `bench` prints n/a for commits and WAL bytes a step."""
    with connection.cursor() as cur:
        cur.execute("SELECT EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'pg_walinspect')")
        return cur.fetchone()[0]
