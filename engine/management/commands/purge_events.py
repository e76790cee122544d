"""``manage.py purge_events``: delete outside events older than WEFT_EVENT_RETENTION_S."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from engine.core.eventwaits import events_purge


class Command(BaseCommand):
    help = "Delete outside events (POST /api/events/) older than WEFT_EVENT_RETENTION_S, in batches."

    def handle(self, *args, **options):
        total = 0
        while True:
            deleted = events_purge(batch=1000)
            total += deleted
            if deleted < 1000:
                break
        self.stdout.write(f"deleted {total} event(s)")
