"""The workflow page's Triggers tab in a real browser: schedules with a human reading of their cron expression
and their next fire times in two time zones (the browser's, here New York, and the schedule's); create, pause,
resume, trigger now and backfill through the UI."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from engine.models import Run, Schedule
from engine.services.schedules import schedule_create
from engine.services.workflows import workflow_save
from tests.conftest import chain
from tests.e2e.conftest import screenshot

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture(scope="module")
def browser_context_args(browser_context_args):
    return {**browser_context_args, "timezone_id": "America/New_York", "locale": "en-US"}


def test_schedules_section_of_the_triggers_tab(ui, console_errors):
    workflow_save(definition=chain("nightly-e2e", 2))
    existing = schedule_create(workflow="nightly-e2e", cron="30 2 * * *", timezone="Asia/Tokyo", overlap="buffer_one")

    ui.goto(f"{ui.base}/workflows/nightly-e2e/")
    ui.get_by_role("tab", name="Triggers").click()
    expect(ui.get_by_role("tab", name="Triggers")).to_have_attribute("aria-selected", "true")
    card = ui.locator(f'[data-schedule="{existing.pk}"]')
    expect(card.locator("[data-cron-text]")).to_have_text("At 02:30")
    expect(card.locator("[data-next-fires] li")).to_have_count(5)
    # 02:30 in Tokyo is 12:30 or 13:30 the day before in New York (EST or EDT)
    expect(card.locator("[data-next-fires] li").first).to_contain_text(
        re.compile(r"(12|01):30:00 PM (EST|EDT) · .* 02:30:00 AM GMT\+9"))

    ui.get_by_text("New schedule", exact=True).click()
    ui.get_by_label("Cron expression").fill("*/15 9-17 * * 1-5")
    expect(ui.locator("[data-cron-preview]")).to_contain_text("Every 15 minutes")
    ui.get_by_label("Time zone").fill("Europe/Berlin")
    ui.get_by_role("button", name="Create schedule").click()
    expect(ui.locator("[data-schedule]")).to_have_count(2)
    created = Schedule.objects.exclude(pk=existing.pk).get()
    assert created.cron == "*/15 9-17 * * 1-5" and created.timezone == "Europe/Berlin"

    console_errors.allow("status of 400 (Bad Request) at " + ui.base + "/api/workflows/nightly-e2e/schedules/")
    ui.get_by_text("New schedule", exact=True).click()
    ui.get_by_label("Cron expression").fill("not cron")
    ui.get_by_role("button", name="Create schedule").click()
    expect(ui.locator("form[data-create] [role=status]")).to_contain_text("cron")
    assert Schedule.objects.count() == 2

    card.get_by_role("button", name="Pause").click()
    expect(card.locator("[data-paused]")).to_be_visible()
    assert Schedule.objects.get(pk=existing.pk).paused
    card = ui.locator(f'[data-schedule="{existing.pk}"]')
    card.get_by_role("button", name="Resume").click()
    expect(card.get_by_role("button", name="Pause")).to_be_visible()
    card = ui.locator(f'[data-schedule="{existing.pk}"]')
    card.get_by_role("button", name="Trigger now").click()
    expect(card.locator("[data-card-status]")).to_contain_text("Started run")
    assert Run.objects.filter(trigger__schedule=existing.pk, trigger__manual=True).count() == 1

    card.locator("summary", has_text="Backfill").click()
    card.get_by_label("From").fill("2026-06-01T00:00:00")
    card.get_by_label("To").fill("2026-06-03T23:00:00")
    card.get_by_role("button", name="Backfill").click()
    expect(card.locator("form[data-backfill] [role=status]")).to_contain_text("3 fire times")
    screenshot(ui, "triggers")
    ui.get_by_role("button", name="Toggle dark mode").click()
    screenshot(ui, "triggers-dark")
