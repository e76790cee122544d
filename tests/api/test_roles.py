"""Every endpoint for every kind of user: anonymous (401), no role (403), viewer, operator, designer,
superuser. Refused requests change nothing."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from django.contrib.auth.models import Group
from django.db import transaction
from django.test.utils import override_settings
from rest_framework.test import APIClient

from engine.integrations.credentials import credential_create
from engine.models import (
    Credential,
    Event,
    EventTrigger,
    Limit,
    OutsideEvent,
    Run,
    Schedule,
    ScheduleFire,
    StepRun,
    WebhookEndpoint,
    Workflow,
    WorkflowVersion,
)
from engine.services.events import event_trigger_create
from engine.services.limits import limit_create
from engine.services.schedules import schedule_create
from engine.services.webhooks import webhook_create
from tests.api.conftest import ALL_USERS, ROLES, client_for, failing_and_approval, make_user
from tests.conftest import definition, drain_queue, node

pytestmark = pytest.mark.django_db

READ, OPERATE, DESIGN = "read", "operate", "design"
USE_CREDENTIALS = "use credentials"  # designer with credential_user (none of ALL_USERS but the superuser)
ALLOWED = {
    "anonymous": set(),
    "norole": set(),
    "viewer": {READ},
    "operator": {READ, OPERATE},
    "designer": {READ, OPERATE, DESIGN},
    "superuser": {READ, OPERATE, DESIGN, USE_CREDENTIALS},
}


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str  # {run} is replaced by the run id
    level: str
    success: int
    body: dict | None = None

    def __str__(self) -> str:
        return f"{self.method} {self.path}"


NEW_DEFINITION = definition("brand-new", [node("n")], [])
CHANGED = definition("mixed", [node("only")], [])
STEP = "/api/runs/{run}/steps"

ENDPOINTS = [
    Endpoint("get", "/api/workflows/", READ, 200),
    Endpoint("get", "/api/workflows/mixed/", READ, 200),
    Endpoint("get", "/api/workflows/mixed/versions/", READ, 200),
    Endpoint("get", "/api/workflows/mixed/versions/1/", READ, 200),
    Endpoint("post", "/api/workflows/mixed/versions/1/compare/", READ, 200, {"definition": CHANGED}),
    Endpoint("get", "/api/workflows/mixed/export/", READ, 200),
    Endpoint("post", "/api/workflows/validate/", READ, 200, {"definition": NEW_DEFINITION}),
    Endpoint("get", "/api/workflow-schema/", READ, 200),
    Endpoint("get", "/api/runs/", READ, 200),
    Endpoint("get", "/api/runs/{run}/", READ, 200),
    Endpoint("get", "/api/runs/{run}/events/", READ, 200),
    Endpoint("get", "/api/runs/{run}/version-compare/", READ, 200),
    Endpoint("get", "/api/runs/{run}/timeline/", READ, 200),
    Endpoint("get", "/api/runs/{run}/logs/", READ, 200),
    Endpoint("get", "/api/workflows/mixed/analytics/", READ, 200),
    Endpoint("get", "/api/workflows/mixed/grid/", READ, 200),
    Endpoint("get", "/api/workflows/mixed/sample/", READ, 200),
    Endpoint("post", "/api/workflows/mixed/template-preview/", READ, 200, {"template": "{{ inputs }}"}),
    Endpoint("get", STEP + "/bad/", READ, 200),
    Endpoint("get", STEP + "/bad/rerun-preview/", READ, 200),
    Endpoint("get", STEP + "/each/items/", READ, 200),
    Endpoint("get", "/api/node-types/", READ, 200),
    Endpoint("get", "/api/queues/", READ, 200),
    Endpoint("get", "/api/credentials/", READ, 200),
    Endpoint("get", "/api/credentials/cred/", READ, 200),
    Endpoint("get", "/api/schedules/", READ, 200),
    Endpoint("get", "/api/schedules/{schedule}/", READ, 200),
    Endpoint("get", "/api/limits/", READ, 200),
    Endpoint("get", "/api/limits/lim/", READ, 200),
    Endpoint("get", "/api/schema/", READ, 200),
    Endpoint("get", "/api/docs/", READ, 200),
    Endpoint("post", "/api/workflows/mixed/runs/", OPERATE, 201, {"inputs": {}}),
    Endpoint("post", "/api/runs/{run}/cancel/", OPERATE, 200),
    Endpoint("post", "/api/runs/{run}/retry-failed/", OPERATE, 200),
    Endpoint("post", STEP + "/bad/retry/", OPERATE, 200),
    Endpoint("post", STEP + "/bad/rerun-from/", OPERATE, 200),
    Endpoint("post", STEP + "/bad/skip/", OPERATE, 200),
    Endpoint("post", STEP + "/ask/complete/", OPERATE, 200, {"output": {"x": 1}}),
    Endpoint("post", STEP + "/ask/approve/", OPERATE, 200, {"comment": "ok"}),
    Endpoint("post", STEP + "/ask/reject/", OPERATE, 200, {"comment": "no"}),
    Endpoint("post", "/api/schedules/{schedule}/pause/", OPERATE, 200),
    Endpoint("post", "/api/schedules/{schedule}/resume/", OPERATE, 200),
    Endpoint("post", "/api/schedules/{schedule}/trigger/", OPERATE, 201),
    Endpoint("post", "/api/schedules/{schedule}/backfill/", OPERATE, 200,
             {"start": "2026-06-01T00:00:00Z", "end": "2026-06-01T00:00:00Z", "overlap": "allow_all"}),
    Endpoint("post", "/api/workflows/mixed/schedules/", DESIGN, 201, {"interval_s": 60}),
    Endpoint("patch", "/api/schedules/{schedule}/", DESIGN, 200, {"interval_s": 120}),
    Endpoint("delete", "/api/schedules/{schedule}/", DESIGN, 204),
    Endpoint("post", "/api/workflows/", DESIGN, 201, {"definition": NEW_DEFINITION}),
    Endpoint("put", "/api/workflows/mixed/", DESIGN, 200, {"definition": CHANGED}),
    Endpoint("post", "/api/workflows/mixed/versions/", DESIGN, 201, {"definition": CHANGED}),
    Endpoint("delete", "/api/workflows/mixed/", DESIGN, 204),
    Endpoint("get", "/api/workflows/mixed/nodes/test/?node=after", DESIGN, 200),
    Endpoint("post", "/api/workflows/mixed/nodes/test/", DESIGN, 200, {"node": node("t")}),
    Endpoint("post", "/api/credentials/", DESIGN, 201, {"name": "new", "kind": "bearer", "secret": "s3cr3t-value"}),
    Endpoint("post", "/api/credentials/cred/rotate/", DESIGN, 200, {"secret": "n3w-s3cr3t"}),
    Endpoint("delete", "/api/credentials/cred/", DESIGN, 204),
    Endpoint("post", "/api/limits/", DESIGN, 201, {"name": "new", "concurrency": 2}),
    Endpoint("patch", "/api/limits/lim/", DESIGN, 200, {"rate": {"limit": 10, "period_s": 1}}),
    Endpoint("delete", "/api/limits/lim/", DESIGN, 204),
    Endpoint("patch", "/api/credentials/cred/", USE_CREDENTIALS, 200, {"allowed_hosts": ["api.example.org"]}),
    Endpoint("get", "/api/workflows/mixed/webhooks/", READ, 200),
    Endpoint("get", "/api/webhooks/{hook}/", READ, 200),
    Endpoint("get", "/api/webhooks/{hook}/deliveries/", READ, 200),
    Endpoint("get", "/api/workflows/mixed/event-triggers/", READ, 200),
    Endpoint("post", "/api/events/", OPERATE, 202, {"name": "ticket.opened", "payload": {}}),
    Endpoint("post", "/api/workflows/mixed/webhooks/", DESIGN, 201, {"description": "new"}),
    Endpoint("patch", "/api/webhooks/{hook}/", DESIGN, 200, {"enabled": False}),
    Endpoint("delete", "/api/webhooks/{hook}/", DESIGN, 204),
    Endpoint("post", "/api/webhooks/{hook}/rotate/", DESIGN, 200),
    Endpoint("post", "/api/workflows/mixed/event-triggers/", DESIGN, 201, {"name": "ticket.closed"}),
    Endpoint("delete", "/api/event-triggers/{trigger}/", DESIGN, 204),
]


def fill(path: str, run_id) -> str:
    """The path with its {run}, {hook}, {trigger} and {schedule} placeholders replaced by the world's objects."""
    hook = WebhookEndpoint.objects.values_list("pk", flat=True).first() or "00000000-0000-0000-0000-000000000000"
    trigger = EventTrigger.objects.values_list("pk", flat=True).first() or 1
    schedule = Schedule.objects.values_list("pk", flat=True).first() or 1
    return (path.replace("{run}", str(run_id)).replace("{hook}", str(hook)).replace("{trigger}", str(trigger))
            .replace("{schedule}", str(schedule)))


def state() -> tuple:
    """Everything a refused request must leave unchanged."""
    return (
        list(Workflow.objects.order_by("slug").values_list("slug", "archived", "current_version_id")),
        WorkflowVersion.objects.count(),
        Run.objects.count(),
        list(Run.objects.order_by("pk").values_list("status", "last_seq")),
        list(StepRun.objects.order_by("pk").values_list("status", "attempt")),
        Event.objects.count(),
        list(Credential.objects.order_by("name").values_list("name", "secret_encrypted", "allowed_hosts")),
        list(Schedule.objects.order_by("pk").values_list("pk", "interval_s", "paused", "next_fire_at")),
        ScheduleFire.objects.count(),
        list(Limit.objects.order_by("name").values_list("name", "concurrency", "rate_limit", "rate_period_s")),
        list(WebhookEndpoint.objects.order_by("pk").values_list("pk", "secret_encrypted", "enabled", "description")),
        list(EventTrigger.objects.order_by("pk").values_list("pk", "name")),
        OutsideEvent.objects.count(),
    )


@pytest.fixture(scope="module")
def world(django_db_setup, django_db_blocker):
    """A run with a failed step and one waiting for approval, a credential, a schedule, a limit, a webhook and an
    event trigger: built once for the whole matrix, in a transaction that is rolled back after the module's last
    test. Each test's own transaction nests in it (a savepoint, rolled back after the test), so every test
    starts from the same world. (A module that uses it holds no transactional test: one would run inside this
    transaction.)"""
    from engine.services.scheduler import run_start
    from engine.services.workflows import workflow_save

    with django_db_blocker.unblock():
        outer = transaction.atomic()
        outer.__enter__()
        try:
            with override_settings(WEFT_PUBLISH_EVENTS=False):
                workflow, _, _ = workflow_save(definition=failing_and_approval("mixed"))
                run, _ = run_start(workflow=workflow, inputs={})
                drain_queue()
                credential_create(name="cred", kind="api_key", secret="very-secret-key")
                run.schedule = schedule_create(workflow="mixed", interval_s=3600, start_at=run.created_at)
                limit_create(name="lim", concurrency=1)
                webhook_create(workflow="mixed", description="hook")
                event_trigger_create(workflow="mixed", name="ticket.opened")
        except BaseException:
            transaction.set_rollback(True)
            outer.__exit__(None, None, None)
            raise
    yield run
    with django_db_blocker.unblock():
        transaction.set_rollback(True)
        outer.__exit__(None, None, None)


def _matrix():
    """Every endpoint for every user. make test-fast takes one user per endpoint, each user in turn (every
    endpoint and every user, a fifth of the pairs); the others are marked slow, for make test."""
    for i, endpoint in enumerate(ENDPOINTS):
        for j, user in enumerate(ALL_USERS):
            marks = () if i % len(ALL_USERS) == j else (pytest.mark.slow,)
            yield pytest.param(endpoint, user, marks=marks, id=f"{endpoint}-{user}")


@pytest.mark.parametrize(("endpoint", "user"), list(_matrix()))
def test_role_matrix(endpoint, user, world):
    client = client_for(user)
    path = fill(endpoint.path, world.pk)
    before = state()
    response = getattr(client, endpoint.method)(path, endpoint.body, format="json")
    if endpoint.level in ALLOWED[user]:
        assert response.status_code == endpoint.success, response.content
        return
    expected = 401 if user == "anonymous" else 403
    assert response.status_code == expected, response.content
    code = response.json()["error"]["code"]
    assert code == ("not_authenticated" if user == "anonymous" else "permission_denied")
    assert state() == before


def test_refusal_names_the_role_needed(api, world):
    r = api("viewer").post(f"/api/runs/{world.pk}/cancel/")
    assert r.status_code == 403
    assert r.json()["error"]["message"] == "this action needs the operator or designer role"


def test_a_designer_needs_the_credential_user_role_to_change_where_a_credential_goes(api, world):
    r = api("designer").patch("/api/credentials/cred/", {"allowed_hosts": ["evil.example"]}, format="json")
    assert r.status_code == 403
    assert r.json()["error"]["message"] == "this action needs the designer and credential_user roles"
    assert Credential.objects.get(name="cred").allowed_hosts == []
    designer = make_user("designer")
    designer.groups.add(Group.objects.get_or_create(name="credential_user")[0])
    client = APIClient()
    client.force_authenticate(designer)
    r = client.patch("/api/credentials/cred/", {"allowed_hosts": ["api.example.org"]}, format="json")
    assert r.status_code == 200 and r.json()["allowed_hosts"] == ["api.example.org"]


def test_roles_exist_as_groups_after_migrations():
    assert set(Group.objects.filter(name__in=ROLES).values_list("name", flat=True)) == set(ROLES)


def test_every_api_operation_is_in_the_matrix():
    """A new endpoint must be added to ENDPOINTS (and so get a test for each role)."""
    from django.urls import get_resolver

    resolver = get_resolver("api.urls")
    names = {p.name for p in resolver.url_patterns}
    covered = set()
    for endpoint in ENDPOINTS:
        from django.urls import resolve

        covered.add(resolve(fill(endpoint.path, "00000000-0000-0000-0000-000000000000").split("?")[0]).url_name)
    assert names == covered
