"""API test helpers: users with each role, authenticated clients, and runs in known states."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group, User
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from engine.core.context import Wait
from engine.core.registry import node_type, task
from engine.services.scheduler import run_start
from engine.services.workflows import workflow_save
from tests.conftest import definition, node

ROLES = ("viewer", "operator", "designer")
ALL_USERS = ("anonymous", "norole", "viewer", "operator", "designer", "superuser")


@node_type("api_test_approval", label="Approval (API tests)")
class ApprovalNode:
    """Waits for an operator to approve or reject."""

    config_schema = {"type": "object"}

    def run(self, ctx, config):
        return Wait("approval", detail={"question": "ok?"})


@task(name="tests.api_chatty")
def chatty(ctx):
    """Prints, logs, records a metric and a journaled call; the first attempt then fails."""
    print(f"hello from {ctx.node_id}")
    ctx.logger.warning("careful now")
    ctx.metrics["tokens"] = 7
    value = ctx.step("lookup", lambda: 42, safe_to_repeat=True)
    if ctx.attempt == 1:
        raise ValueError("first try fails")
    return {"value": value}


@pytest.fixture(autouse=True)
def _quiet_events(settings):
    # The event table is what the API reads; no need to publish to the channel layer here.
    settings.WEFT_PUBLISH_EVENTS = False


def make_user(kind: str) -> User | None:
    """The user of the given kind: a role name, "norole", "superuser", or "anonymous" (None).
    No password: these users authenticate with tokens or ``force_login``."""
    if kind == "anonymous":
        return None
    user, created = User.objects.get_or_create(username=f"u-{kind}", defaults={
        "is_superuser": kind == "superuser", "is_staff": kind == "superuser"})
    if created:
        user.set_unusable_password()
        user.save(update_fields=["password"])
        if kind in ROLES:
            group, _ = Group.objects.get_or_create(name=kind)
            user.groups.add(group)
    return user


def client_for(kind: str) -> APIClient:
    """An API client authenticated with a DRF token as a user of ``kind``."""
    client = APIClient()
    user = make_user(kind)
    if user is not None:
        token, _ = Token.objects.get_or_create(user=user)
        client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    return client


@pytest.fixture
def api():
    """``api(kind)``: a token-authenticated client for a user of that kind."""
    return client_for


@pytest.fixture
def designer():
    return client_for("designer")


def simple_definition(slug: str = "wf", **extra) -> dict:
    return definition(slug, [node("a"), node("b")], [("a", "b")], **extra)


def failing_and_approval(slug: str = "mixed") -> dict:
    """Three roots: ``bad`` fails on its only attempt; ``ask`` waits for approval; ``after`` follows ``ask``;
    ``each`` maps over three items (``each[0]`` to ``each[2]``), which succeed."""
    return definition(
        slug,
        [node("bad", "tests.raise", kwargs={"message": "boom"}, retry={"max_attempts": 1}),
         {"id": "ask", "type": "api_test_approval"},
         node("after"),
         {**node("each", kwargs={"item": "{{ item }}"}), "for_each": "{{ [1, 2, 3] }}"}],
        [("ask", "after")],
    )


@pytest.fixture
def mixed_run(drain):
    """A running run whose step ``bad`` failed and whose step ``ask`` waits for approval."""
    workflow, _, _ = workflow_save(definition=failing_and_approval())
    run, _ = run_start(workflow=workflow, inputs={})
    drain()
    run.refresh_from_db()
    return run
