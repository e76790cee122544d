"""What triggers count on /metrics: schedule fires by kind, fire times missed (older than the catch-up window),
fires skipped by each overlap policy, webhook deliveries by outcome, events received and the runs they started."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from engine.services.events import event_send, event_trigger_create
from engine.services.schedule_fires import schedule_fire_due
from engine.services.schedules import schedule_backfill, schedule_create, schedule_trigger, schedule_update
from engine.services.webhooks import webhook_create
from tests.observability.helpers import delta, scrape
from tests.triggers.conftest import signed, stale, ticket_workflow

pytestmark = pytest.mark.django_db


def fire_all(schedule) -> None:
    while schedule_fire_due(schedule.pk):
        pass


def test_schedule_fires_misses_and_overlap_skips_are_counted(client, django_capture_on_commit_callbacks):
    ticket_workflow("tickets")
    ago = lambda seconds: timezone.now() - timedelta(seconds=seconds)  # noqa: E731
    inputs = {"ticket": "{{ scheduled_for }}"}
    before = scrape(client)
    with django_capture_on_commit_callbacks(execute=True):
        # fire times 35, 25, 15 and 5 s ago; a 20 s window: two missed, two started
        fire_all(schedule_create(workflow="tickets", interval_s=10, catchup_window_s=20, overlap="allow_all",
                                 start_at=ago(35), inputs=inputs))
        # three fire times found at once while the first one's run is going
        for policy in ("skip", "buffer_one", "buffer_all"):
            fire_all(schedule_create(workflow="tickets", interval_s=10, catchup_window_s=60, overlap=policy,
                                     start_at=ago(25), inputs=inputs))
        manual = schedule_create(workflow="tickets", cron="0 * * * *", inputs=inputs)
        schedule_trigger(schedule_id=manual.pk)
        schedule_backfill(schedule_id=manual.pk, start=datetime(2026, 6, 1, tzinfo=UTC),
                          end=datetime(2026, 6, 1, 2, tzinfo=UTC), overlap="allow_all")
    after = scrape(client)
    fires = "weft_schedule_fires_total"
    assert delta(before, after, fires, kind="scheduled") == 2 + 1 + 1 + 1
    assert delta(before, after, fires, kind="manual") == 1
    assert delta(before, after, fires, kind="backfill") == 3
    assert delta(before, after, "weft_schedule_misses_total") == 2
    skips = "weft_schedule_overlap_skips_total"
    assert (delta(before, after, skips, policy="skip"), delta(before, after, skips, policy="buffer_one"),
            delta(before, after, skips, policy="buffer_all")) == (2, 1, 0)
    assert delta(before, after, "weft_schedule_fire_lag_seconds_count") == 5


def test_fire_times_missed_before_a_schedule_change_are_counted(client, django_capture_on_commit_callbacks):
    ticket_workflow("tickets")
    before = scrape(client)
    with django_capture_on_commit_callbacks(execute=True):
        # fire times 35, 25, 15 and 5 s ago, due but not fired when the interval changes; a 20 s window
        s = schedule_create(workflow="tickets", interval_s=10, catchup_window_s=20, overlap="allow_all",
                            start_at=timezone.now() - timedelta(seconds=35), inputs={"ticket": "{{ scheduled_for }}"})
        schedule_update(schedule_id=s.pk, interval_s=3600)
    after = scrape(client)
    assert delta(before, after, "weft_schedule_misses_total") == 2
    assert delta(before, after, "weft_schedule_fires_total", kind="scheduled") == 2


def test_webhook_deliveries_are_counted_by_outcome(client, settings):
    settings.WEFT_WEBHOOK_MAX_BODY_BYTES = 1000
    ticket_workflow("tickets")
    hook, secret = webhook_create(workflow="tickets", rate_per_minute=1, rate_burst=5)

    def deliver(payload, *, msg_id="msg_1", at=None, endpoint=hook["id"]):
        text, headers = signed(secret, payload, msg_id=msg_id, at=at)
        extra = {f"HTTP_{k.upper().replace('-', '_')}": v for k, v in headers.items() if k != "content-type"}
        return client.post(f"/hooks/{endpoint}/", text, content_type="application/json", **extra).status_code

    before = scrape(client)
    answers = [deliver({"ticket": "T-1"}), deliver({"ticket": "T-1"}), deliver({"ticket": "T-1"}, at=stale()),
               deliver({"ticket": 1}, msg_id="msg_2"), deliver({"ticket": "T" * 2000}, msg_id="msg_3"),
               deliver({"ticket": "T-4"}, msg_id="msg_4"), deliver({"ticket": "T-5"}, msg_id="msg_5"),
               deliver({"ticket": "T-6"}, endpoint="00000000-0000-0000-0000-000000000000")]
    assert answers == [202, 202, 401, 400, 413, 202, 429, 404]
    after = scrape(client)
    counted = {outcome: delta(before, after, "weft_webhook_deliveries_total", outcome=outcome)
               for outcome in ("accepted", "duplicate", "bad_signature", "invalid", "too_large", "rate_limited",
                               "not_found", "refused")}
    assert counted == {"accepted": 2, "duplicate": 1, "bad_signature": 1, "invalid": 1, "too_large": 1,
                       "rate_limited": 1, "not_found": 1, "refused": 0}


def test_events_received_are_counted_once_with_the_runs_they_started(client):
    ticket_workflow("tickets")
    ticket_workflow("urgent")
    event_trigger_create(workflow="tickets", name="ticket.opened")
    event_trigger_create(workflow="urgent", name="ticket.opened", filter="payload.priority > 2")
    before = scrape(client)
    event_send(name="ticket.opened", payload={"ticket": "T-1", "priority": 5}, event_id="evt-1")
    event_send(name="ticket.opened", payload={"ticket": "T-1", "priority": 5}, event_id="evt-1")  # a resend
    event_send(name="ticket.opened", payload={"ticket": "T-2", "priority": 1}, event_id="evt-2")
    event_send(name="deploy.done", payload={}, event_id="evt-3")
    after = scrape(client)
    assert delta(before, after, "weft_events_received_total") == 3
    assert delta(before, after, "weft_event_runs_started_total") == 2 + 1
