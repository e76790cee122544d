"""``manage.py prune --older-than 30d [--workflow SLUG] [--dry-run]``."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from engine.exceptions import EngineError
from engine.services.retention import parse_age, prunable, prune


class Command(BaseCommand):
    help = ("Delete finished runs older than an age, with their steps, attempts, events, journal entries and logs, "
            "in short batches that never make a running workflow wait.")

    def add_arguments(self, parser):
        parser.add_argument("--older-than", required=True, metavar="AGE",
                            help="finished more than this long ago: 30d, 12h, 90m, 3600s (a plain number is days)")
        parser.add_argument("--workflow", metavar="SLUG", default=None, help="only this workflow's runs")
        parser.add_argument("--dry-run", action="store_true", help="count what would be deleted; delete nothing")

    def handle(self, *args, older_than, workflow, dry_run, **options):
        try:
            age = parse_age(older_than)
        except ValueError as exc:
            raise CommandError(f"--older-than: {exc}", returncode=2) from None
        try:
            counts = prunable(older_than=age, workflow=workflow) if dry_run else prune(older_than=age,
                                                                                     workflow=workflow)
        except EngineError as exc:
            raise CommandError(exc.message, returncode=2) from None
        verb = "would delete" if dry_run else "deleted"
        parts = ", ".join(f"{n} {name.replace('_', ' ')}" for name, n in counts.as_dict().items())
        self.stdout.write(f"{verb} {parts}")
