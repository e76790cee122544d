"""The workflow page's Triggers tab: webhook endpoints with their URL, a curl example, the secret shown once,
rotation, the last deliveries; event triggers."""

from __future__ import annotations

import re

import pytest
from django.test import Client

from engine.models import WebhookEndpoint
from engine.services.events import event_trigger_create
from engine.services.webhooks import webhook_receive
from tests.api.conftest import make_user
from tests.triggers.conftest import signed, ticket_workflow

pytestmark = pytest.mark.django_db


def client(kind: str) -> Client:
    c = Client()
    c.force_login(make_user(kind))
    return c


def test_a_designer_creates_an_endpoint_and_sees_its_secret_once():
    ticket_workflow("tickets")
    designer = client("designer")
    page = designer.get("/workflows/tickets/triggers/").content.decode()
    assert 'aria-current="page">Triggers' in page and "No webhook endpoints." in page
    r = designer.post("/workflows/tickets/triggers/webhooks/new/", {"description": "help desk"})
    page = r.content.decode()
    secret = re.search(r"data-secret>(whsec_[^<]+)<", page).group(1)
    endpoint = WebhookEndpoint.objects.get()
    assert f"http://testserver/hooks/{endpoint.pk}/" in page and "webhook-signature" in page
    again = designer.get("/workflows/tickets/triggers/").content.decode()
    assert secret not in again and "help desk" in again
    rotated = designer.post(f"/workflows/tickets/triggers/webhooks/{endpoint.pk}/rotate/").content.decode()
    new = re.search(r"data-secret>(whsec_[^<]+)<", rotated).group(1)
    assert new != secret and "the old one no longer works" in rotated


def test_deliveries_and_event_triggers_are_listed():
    from engine.services.webhooks import webhook_create

    ticket_workflow("tickets")
    described, secret = webhook_create(workflow="tickets")
    text, headers = signed(secret, {"ticket": "T-1"}, msg_id="msg_page")
    assert webhook_receive(endpoint_id=described["id"], body=text.encode(), headers=headers).status == 202
    webhook_receive(endpoint_id=described["id"], body=b"{}", headers={})
    event_trigger_create(workflow="tickets", name="ticket.opened", filter="payload.priority > 2")
    page = client("viewer").get("/workflows/tickets/triggers/").content.decode()
    assert 'data-delivery-outcome="accepted"' in page and 'data-delivery-outcome="bad_signature"' in page
    assert "msg_page" in page
    assert 'data-event-trigger="ticket.opened"' in page and "payload.priority &gt; 2" in page
    assert "Create endpoint" not in page and "Rotate secret" not in page  # a viewer's page


def test_a_viewer_cannot_create_or_rotate():
    ticket_workflow("tickets")
    viewer = client("viewer")
    assert viewer.post("/workflows/tickets/triggers/webhooks/new/").status_code == 403
    assert WebhookEndpoint.objects.count() == 0


def test_the_analytics_page_links_the_triggers_tab():
    ticket_workflow("tickets")
    page = client("viewer").get("/workflows/tickets/").content.decode()
    assert 'href="/workflows/tickets/triggers/"' in page
