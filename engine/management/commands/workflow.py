"""``manage.py workflow import FILE.json`` / ``manage.py workflow export SLUG``."""

from __future__ import annotations

import json
import sys

from django.core.management.base import BaseCommand, CommandError

from engine.exceptions import EngineError, GraphInvalid
from engine.services.workflows import workflow_export, workflow_save


class Command(BaseCommand):
    help = "Import a workflow definition from JSON, or export one."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        imp = sub.add_parser("import", help="create the workflow or add a new version")
        imp.add_argument("file", help="path to a JSON definition, or - for standard input")
        imp.add_argument("--note", default="imported")
        exp = sub.add_parser("export", help="print a workflow's definition as JSON")
        exp.add_argument("slug")
        exp.add_argument("--version", type=int, dest="version_number")

    def handle(self, *args, action, **options):
        try:
            if action == "import":
                self._import(options["file"], options["note"])
            else:
                definition = workflow_export(options["slug"], version=options.get("version_number"))
                self.stdout.write(json.dumps(definition, indent=2, ensure_ascii=False))
        except GraphInvalid as exc:
            lines = [f"  - {d.get('node') or d.get('edge') or d.get('path') or ''}: {d['message']}"
                     for d in exc.details]
            raise CommandError("invalid workflow definition:\n" + "\n".join(lines), returncode=2) from None
        except EngineError as exc:
            raise CommandError(exc.message, returncode=2) from None

    def _import(self, path: str, note: str) -> None:
        try:
            text = sys.stdin.read() if path == "-" else open(path, encoding="utf-8").read()
            definition = json.loads(text)
        except OSError as exc:
            raise CommandError(f"cannot read {path}: {exc.strerror}", returncode=2) from None
        except json.JSONDecodeError as exc:
            raise CommandError(f"{path} is not valid JSON: {exc}", returncode=2) from None
        workflow, version, created = workflow_save(definition=definition, note=note)
        word = "saved as" if created else "unchanged at"
        self.stdout.write(f"workflow {workflow.slug}: {word} version {version.number}")
