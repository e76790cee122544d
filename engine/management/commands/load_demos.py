"""``manage.py load_demos``: save the demo workflows (research agent, support triage, fan-out summarise)."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from engine.demos import demos_load


class Command(BaseCommand):
    help = "Save the demo workflows that do not exist yet (--update: also overwrite changed ones with the demo)."

    def add_arguments(self, parser):
        parser.add_argument("--update", action="store_true", help="save a new version of demos that differ")

    def handle(self, *args, update: bool, **options):
        for slug, what in demos_load(update=update):
            self.stdout.write(f"demo {slug}: {what}")
