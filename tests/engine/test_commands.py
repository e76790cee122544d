"""The engine's management commands, run as a user would (subprocesses against the test database)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from engine.models import Workflow
from tests.conftest import REPO, chain, definition, node

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
    assert "used twice" in out.stderr and "nope" in out.stderr and "zz" in out.stderr
    assert not Workflow.objects.filter(slug="cli-bad").exists()
    bad_json = manage(worker_env, "workflow", "import", "-", stdin="{not json")
    assert bad_json.returncode == 2 and "not valid JSON" in bad_json.stderr


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
