"""Property-based check of the whole API against its own OpenAPI schema, over real HTTP.

Schemathesis generates requests for every operation from /api/schema/ and sends them to a live
server (authenticated with a superuser's token, so permissions let every request reach its
handler): first requests that match the schema, then requests that violate it. No response may
be a 5xx, and every response must match the schema: a documented status code, content type,
headers and body.
"""

from __future__ import annotations

import time

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from rest_framework.authtoken.models import Token
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from engine.integrations.credentials import credential_create
from engine.services.scheduler import run_start
from engine.services.workflows import workflow_save
from tests.api.conftest import failing_and_approval, make_user

pytestmark = pytest.mark.django_db(transaction=True)

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
# (generation mode, examples per operation)
PASSES = [(GenerationMode.POSITIVE, 15), (GenerationMode.NEGATIVE, 8)]
# The examples are fixed in number; the budget only stops a wedged server from eating the suite's time.
TIME_BUDGET_S = 240


def test_no_5xx_and_every_response_matches_the_schema(live_server, drain):
    workflow, _, _ = workflow_save(definition=failing_and_approval("mixed"))
    run_start(workflow=workflow, inputs={})
    drain()
    credential_create(name="cred", kind="api_key", secret="very-secret-key")
    token, _ = Token.objects.get_or_create(user=make_user("superuser"))
    headers = {"Authorization": f"Token {token.key}"}

    schema = schemathesis.openapi.from_url(f"{live_server.url}/api/schema/?format=json", headers=headers)
    session = requests.Session()
    session.headers.update(headers)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 30

    started = time.monotonic()
    deadline = started + TIME_BUDGET_S
    failures: list[str] = []
    tested = 0
    sent = {mode: 0 for mode, _ in PASSES}
    requests_sent = [0]
    for mode, examples in PASSES:
        for operation in operations:
            if time.monotonic() > deadline:
                break

            @settings(max_examples=examples, deadline=None, database=None, derandomize=True,
                      suppress_health_check=list(HealthCheck))
            @given(case=operation.as_strategy(generation_mode=mode))
            def check(case):
                requests_sent[0] += 1
                case.call_and_validate(base_url=live_server.url, session=session, checks=CHECKS)

            before = requests_sent[0]
            try:
                check()
            except Unsatisfiable:
                # Negative mode on an operation without parameters or body: nothing to violate.
                assert mode == GenerationMode.NEGATIVE, operation.label
            except Exception as exc:  # collect every operation's failure, then report them together
                failures.append(f"{mode.value} {operation.label}:\n{exc}")
            sent[mode] += requests_sent[0] - before
            tested += 1
    print(f"\nschemathesis: {len(operations)} operations, "
          + ", ".join(f"{n} {mode.value} examples" for mode, n in sent.items())
          + f", {time.monotonic() - started:.0f} s of the {TIME_BUDGET_S} s budget")
    assert not failures, "\n\n".join(failures)
    planned = len(operations) * len(PASSES)
    assert tested == planned, f"the time budget ran out after {tested} of {planned} operation passes"
