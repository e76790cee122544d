"""Helpers of the trigger tests: a workflow with an input schema, and Standard Webhooks signing."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from standardwebhooks.webhooks import Webhook

from tests.conftest import definition, node

TICKET_SCHEMA = {"type": "object", "required": ["ticket"], "additionalProperties": False,
                 "properties": {"ticket": {"type": "string"}, "priority": {"type": "integer"}}}


@pytest.fixture(autouse=True)
def _quiet_events(settings):
    settings.WEFT_PUBLISH_EVENTS = False


def ticket_workflow(slug: str = "tickets"):
    from engine.services.workflows import workflow_save

    workflow, _, _ = workflow_save(definition=definition(slug, [node("a")], [], inputs=TICKET_SCHEMA))
    return workflow


def signed(secret: str, payload, *, msg_id: str = "msg_1", at: datetime | None = None,
           body: str | None = None) -> tuple[str, dict]:
    """(body, headers) of a Standard Webhooks delivery of ``payload`` (or of the text ``body``)."""
    text = body if body is not None else json.dumps(payload)
    at = at or datetime.now(UTC)
    signature = Webhook(secret).sign(msg_id, at, text)
    return text, {"webhook-id": msg_id, "webhook-timestamp": str(int(at.timestamp())),
                  "webhook-signature": signature, "content-type": "application/json"}


def stale() -> datetime:
    return datetime.now(UTC) - timedelta(minutes=6)
