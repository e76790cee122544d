"""The workflow page's Triggers tab: webhook endpoints with their URL, a curl example, the secret shown once,
rotation, the last deliveries; event triggers, made and deleted with the page's form."""

from __future__ import annotations

import html
import json
import re

import pytest
from django.test import Client

from engine.models import EventTrigger, WebhookEndpoint
from engine.services.events import event_trigger_create
from engine.services.webhooks import webhook_receive
from tests.api.conftest import client_for, make_user
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


def test_an_endpoint_is_rotated_or_disabled_only_under_its_own_workflow():
    from engine.services.webhooks import webhook_create

    ticket_workflow("tickets")
    ticket_workflow("other")
    described, _ = webhook_create(workflow="tickets")
    before = WebhookEndpoint.objects.get().secret_encrypted
    designer = client("designer")
    assert designer.post(f"/workflows/other/triggers/webhooks/{described['id']}/rotate/").status_code == 404
    assert designer.post(f"/workflows/other/triggers/webhooks/{described['id']}/enable/",
                         {"enabled": "0"}).status_code == 404
    assert designer.post("/workflows/tickets/triggers/webhooks/00000000-0000-0000-0000-000000000000/rotate/"
                         ).status_code == 404
    endpoint = WebhookEndpoint.objects.get()
    assert (endpoint.secret_encrypted, endpoint.enabled) == (before, True)
    assert designer.post(f"/workflows/tickets/triggers/webhooks/{described['id']}/enable/",
                         {"enabled": "0"}).status_code == 302
    assert WebhookEndpoint.objects.get().enabled is False


def test_the_analytics_page_links_the_triggers_tab():
    ticket_workflow("tickets")
    page = client("viewer").get("/workflows/tickets/").content.decode()
    assert 'href="/workflows/tickets/triggers/"' in page


# -- the event trigger form -------------------------------------------------------------------------

def control(page: str, field: str) -> str:
    """The event trigger form's input, select or textarea of a field (its opening tag)."""
    return re.search(rf'<(?:input|select|textarea) [^>]*id="event-trigger-{field.replace("_", "-")}"[^>]*>',
                     page).group(0)


def field_error(page: str, field: str) -> str | None:
    """The error shown next to a form field (None: none), after checking the field points at it."""
    found = re.search(rf'<p class="field-error" id="(event-trigger-[a-z-]+-error)" data-error="{field}">([^<]*)</p>',
                      page)
    if found is None:
        assert 'aria-invalid' not in control(page, field)
        return None
    assert 'aria-invalid="true"' in control(page, field) and found.group(1) in control(page, field)
    return html.unescape(found.group(2))


def test_a_designer_creates_an_event_trigger_from_the_form():
    ticket_workflow("tickets")
    designer = client("designer")
    page = designer.get("/workflows/tickets/triggers/").content.decode()
    assert '<label for="event-trigger-name">Event name</label>' in page and "Create event trigger" in page
    r = designer.post("/workflows/tickets/triggers/event-triggers/new/", {
        "name": "ticket.opened", "filter_language": "jmespath", "filter": "payload.priority > `2`",
        "inputs": '{"ticket": "{{ payload.id }}"}', "enabled": "on"})
    assert r.status_code == 302 and r["Location"] == "/workflows/tickets/triggers/#events-heading"
    trigger = EventTrigger.objects.get()
    assert (trigger.workflow.slug, trigger.name, trigger.filter, trigger.filter_language, trigger.inputs,
            trigger.enabled) == ("tickets", "ticket.opened", "payload.priority > `2`", "jmespath",
                                 {"ticket": "{{ payload.id }}"}, True)
    assert trigger.created_by.username == "u-designer"
    page = designer.get(r["Location"]).content.decode()
    assert "Event trigger on ticket.opened created." in page and 'data-event-trigger="ticket.opened"' in page
    assert "<code>{&quot;ticket&quot;: &quot;{{ payload.id }}&quot;}</code>" in page  # the inputs as JSON
    # empty filter and inputs, enabled unticked: every event, the payload as inputs, disabled
    designer.post("/workflows/tickets/triggers/event-triggers/new/", {"name": "ticket.closed", "inputs": " "})
    closed = EventTrigger.objects.get(name="ticket.closed")
    assert (closed.filter, closed.filter_language, closed.inputs, closed.enabled) == ("", "template", None, False)


BAD_FORMS = [
    ({"name": " "}, "name"),
    ({"name": "x" * 201}, "name"),
    ({"name": "a", "filter": "payload.a =="}, "filter"),
    ({"name": "a", "filter": "a[", "filter_language": "jmespath"}, "filter"),
    ({"name": "a", "filter_language": "python"}, "filter_language"),
    ({"name": "a", "inputs": '{"ticket": "{{ payload. }}"}'}, "inputs"),
    ({"name": "a", "inputs": "{not json"}, "inputs"),
]


@pytest.mark.parametrize(("form", "field"), BAD_FORMS)
def test_a_refused_event_trigger_form_shows_the_error_next_to_its_field_and_saves_nothing(form, field):
    ticket_workflow("tickets")
    r = client("designer").post("/workflows/tickets/triggers/event-triggers/new/", form)
    assert r.status_code == 400
    page = r.content.decode()
    assert field_error(page, field)
    assert [f for f in ("name", "filter_language", "filter", "inputs") if f != field and field_error(page, f)] == []
    assert "autofocus" in control(page, field) and page.count("autofocus") == 1
    assert '<details class="card" id="event-trigger-new" open>' in page
    if field != "name":
        assert 'value="a"' in page  # what was typed is kept
    assert EventTrigger.objects.count() == 0


@pytest.mark.parametrize(("form", "field"), [(f, x) for f, x in BAD_FORMS if f.get("inputs") != "{not json"])
def test_the_form_refuses_what_the_api_refuses_naming_the_same_field(form, field):
    ticket_workflow("tickets")
    body = {**form, **({"inputs": json.loads(form["inputs"])} if "inputs" in form else {})}
    r = client_for("designer").post("/api/workflows/tickets/event-triggers/", body, format="json")
    assert r.status_code == 400, r.content
    detail = r.json()["error"]["details"][0]
    assert detail.get("field", detail.get("path")) == field
    page = client("designer").post("/workflows/tickets/triggers/event-triggers/new/", form).content.decode()
    assert field_error(page, field)
    assert EventTrigger.objects.count() == 0


def test_only_designers_create_or_delete_event_triggers_and_only_their_workflows():
    ticket_workflow("tickets")
    ticket_workflow("other")
    mine = event_trigger_create(workflow="tickets", name="ticket.opened")
    theirs = event_trigger_create(workflow="other", name="ticket.opened")
    for kind in ("viewer", "operator"):
        c = client(kind)
        page = c.get("/workflows/tickets/triggers/").content.decode()
        assert "Create event trigger" not in page and "Delete the trigger" not in page
        assert c.post("/workflows/tickets/triggers/event-triggers/new/", {"name": "a"}).status_code == 403
        assert c.post(f"/workflows/tickets/triggers/event-triggers/{mine['id']}/delete/").status_code == 403
    designer = client("designer")
    assert 'aria-label="Delete the trigger on ticket.opened"' in designer.get(
        "/workflows/tickets/triggers/").content.decode()
    r = designer.post(f"/workflows/tickets/triggers/event-triggers/{theirs['id']}/delete/", follow=True)
    assert "does not exist in workflow" in r.content.decode()
    assert EventTrigger.objects.count() == 2
    r = designer.post(f"/workflows/tickets/triggers/event-triggers/{mine['id']}/delete/", follow=True)
    assert "Event trigger deleted." in r.content.decode()
    assert list(EventTrigger.objects.values_list("workflow__slug", flat=True)) == ["other"]
