"""Upgrade safety: a run started on the previous release's code (the commit before the newest migration),
its workers killed mid-run, the database migrated, the new workers started: the run finishes, and each of
its effects is applied once (the procedure of docs/operations.md, "Upgrading").
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from tests.chaos.test_postgres_restart import PrivatePostgres
from tests.conftest import REPO, chain, node
from tests.support.effects import EffectServer
from tests.support.private_site import PrivateSite, SiteWorkers

pytestmark = [pytest.mark.workers, pytest.mark.chaos]

STEPS = 12  # every other step an effect, the others a short sleep: the run takes seconds
RETRY = {"max_attempts": 10, "backoff_s": 0.2, "backoff_factor": 1.5, "max_backoff_s": 2}


def git(*args: str) -> str:
    return subprocess.run(["git", "-C", str(REPO), *args], check=True, capture_output=True, text=True,
                          timeout=60).stdout.strip()


def previous_release() -> tuple[str, str]:
    """The commit before the newest migration was added, and that migration's name."""
    try:
        shallow = git("rev-parse", "--is-shallow-repository") == "true"
    except (OSError, subprocess.CalledProcessError) as exc:
        pytest.skip(f"needs the git history of the code (git rev-parse failed: {exc})")
    if shallow:
        pytest.skip("needs the git history of the code; this is a shallow clone")
    newest = git("log", "--diff-filter=A", "--format=%H", "--", "engine/migrations/").split()
    if not newest:
        pytest.skip("no commit in the history adds a migration")
    added = git("show", "--diff-filter=A", "--name-only", "--format=", newest[0], "--", "engine/migrations/")
    try:
        return git("rev-parse", f"{newest[0]}^"), Path(added.split()[0]).stem
    except subprocess.CalledProcessError:
        pytest.skip("the newest migration's commit has no parent in this history")


@pytest.fixture
def previous_tree():
    commit, migration = previous_release()
    tree = Path(tempfile.mkdtemp(prefix="weft-previous-"))
    archive = subprocess.run(["git", "-C", str(REPO), "archive", "--format=tar", commit], check=True,
                             capture_output=True, timeout=120).stdout
    subprocess.run(["tar", "-x", "-C", str(tree)], input=archive, check=True, timeout=120)
    yield tree, commit, migration
    shutil.rmtree(tree, ignore_errors=True)


@pytest.fixture
def private_pg():
    pg = PrivatePostgres()
    yield pg
    pg.close()


def test_run_started_on_the_previous_release_finishes_after_the_upgrade(private_pg, previous_tree, tmp_path):
    tree, commit, migration = previous_tree
    old = PrivateSite(private_pg, "weft", repo=tree)
    new = PrivateSite(private_pg, "weft")
    old.manage("migrate", "-v0")
    assert migration not in old.manage("showmigrations", "engine").split(), "the old code knows the new migration"
    with EffectServer() as server:
        old.workflow_import(chain("upgrade", STEPS, lambda i: (
            node(f"s{i}", "tests.http_effect", kwargs={"url": server.url}, retry=RETRY) if i % 2 else
            node(f"s{i}", "tests.sleep", kwargs={"seconds": 0.3}, retry=RETRY))), tmp_path)
        workers = SiteWorkers(old).start()
        try:
            run_id = old.run_start("upgrade")
            deadline = time.monotonic() + 60
            while old.query("SELECT count(*) FROM engine_steprun WHERE status = 'succeeded'")[0][0] < 3:
                assert time.monotonic() < deadline, "the run made no progress on the previous release"
                time.sleep(0.05)
        finally:
            # Stopped at once: SIGTERM would let the worker finish the chain it is continuing (engine.worker.loop)
            workers.kill_all()
        mid = old.query("SELECT status FROM engine_run WHERE id = %s", run_id)[0][0]
        done_on_old = old.query("SELECT count(*) FROM engine_steprun WHERE status = 'succeeded'")[0][0]
        assert mid == "running", f"the run was not stopped mid-way: {mid}"

        new.manage("migrate", "-v0")
        assert f"[X] {migration}" in new.manage("showmigrations", "engine")
        new.guard_install()  # the new code's status changes are checked from here on
        workers = SiteWorkers(new).start()
        started = time.monotonic()
        try:
            counts = new.runs_wait(total=1, timeout=60)
        finally:
            workers.stop()
    finished_s = time.monotonic() - started
    lost = new.query("SELECT count(*) FROM engine_attempt WHERE outcome = 'lost'")[0][0]
    print(f"\nupgrade from {commit[:10]} (before {migration}): {done_on_old} of {STEPS} steps done on the old "
          f"code; the run finished {finished_s:.1f} s after the new workers started; {lost} attempts lost and "
          f"retried; {sum(server.deliveries.values())} effect requests for {len(server.deliveries)} keys")
    assert counts == {"succeeded": 1}
    assert new.query("SELECT count(*) FROM engine_steprun WHERE status <> 'succeeded'")[0][0] == 0
    assert len(server.applied) == STEPS // 2 and set(server.applied.values()) == {1}
    assert server.missing_key == 0
