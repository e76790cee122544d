"""Property-based check of the whole API against its own OpenAPI schema, over real HTTP.

The schemathesis command line runs against a live server with every check (what ``--checks all``
enables, set in schemathesis.toml so that its per-operation exceptions apply) and every phase: the
schema's examples, its coverage cases (each boundary, each missing or wrong parameter), fuzzing with
valid and invalid data, and the stateful phase, which follows the schema's links (create a workflow,
start a run, get the run, act on its steps...). It authenticates with a superuser's token, so
permissions let every request reach its handler. No response may be a 5xx; every response must match
the schema; requests the schema calls valid must be accepted and those it calls invalid refused. The
few exceptions, each with its reason, are in schemathesis.toml next to this file.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
from rest_framework.authtoken.models import Token

from engine.integrations.credentials import credential_create
from engine.services.scheduler import run_start
from engine.services.workflows import workflow_save
from tests.api.conftest import failing_and_approval, make_user

pytestmark = pytest.mark.django_db(transaction=True)

CONFIG = Path(__file__).with_name("schemathesis.toml")
SCHEMATHESIS = Path(sys.executable).with_name("schemathesis")
PHASES = "examples,coverage,fuzzing,stateful"
EXAMPLES = 6  # per operation and phase; with the seed, the same requests on every run
SEED = 20261202
# The run is fixed in size; the timeout only stops a wedged server from eating the suite's time.
TIMEOUT_S = 900  # the schedule operations added about a third to the run; a loaded 2-core machine needs the margin


@pytest.mark.timeout(TIMEOUT_S + 120)  # past pytest-timeout's 600 s for the whole suite
def test_schemathesis_with_every_check_and_phase_finds_nothing(live_server, drain, tmp_path):
    workflow, _, _ = workflow_save(definition=failing_and_approval("mixed"))
    run_start(workflow=workflow, inputs={})
    drain()
    credential_create(name="cred", kind="api_key", secret="very-secret-key")
    token, _ = Token.objects.get_or_create(user=make_user("superuser"))

    command = [
        str(SCHEMATHESIS), "--config-file", str(CONFIG), "--no-color",
        "run", f"{live_server.url}/api/schema/?format=json",
        "--header", f"Authorization: Token {token.key}",
        "--phases", PHASES, "--max-examples", str(EXAMPLES), "--seed", str(SEED),
        "--workers", "1", "--generation-database", "none",
        "--report", "junit", "--report-junit-path", str(tmp_path / "junit.xml"),
    ]
    started = time.monotonic()
    # In tmp_path: schemathesis keeps a cache directory (.schemathesis/) where it runs.
    done = subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT_S, check=False, cwd=tmp_path)
    elapsed = time.monotonic() - started
    output = done.stdout + done.stderr
    print(f"\nschemathesis: {elapsed:.0f} s\n" + "\n".join(output.splitlines()[-15:]))
    assert done.returncode == 0, output
    for phase in ("Coverage", "Fuzzing", "Stateful"):  # each ran and passed (Examples: the schema has none)
        assert f"✅ {phase}" in output, output
