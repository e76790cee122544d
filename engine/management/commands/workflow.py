"""``manage.py workflow import FILE.json`` / ``manage.py workflow export SLUG``."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from engine.core.security import MAX_JSON_DEPTH, json_problem, nesting_problem
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
        definition = _read_json(path)
        workflow, version, created = workflow_save(definition=definition, note=note)
        word = "saved as" if created else "unchanged at"
        self.stdout.write(f"workflow {workflow.slug}: {word} version {version.number}")


def _read_json(path: str):
    """The JSON in ``path`` (``-``: standard input); a one-line CommandError (exit 2) for anything else."""
    name = "standard input" if path == "-" else path
    try:
        data = sys.stdin.buffer.read() if path == "-" else Path(path).read_bytes()
    except OSError as exc:
        raise CommandError(f"cannot read {path}: {exc.strerror}", returncode=2) from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CommandError(f"{name} is not UTF-8 (byte 0x{data[exc.start]:02x} at offset {exc.start})",
                           returncode=2) from None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CommandError(f"{name} is not valid JSON: {exc}", returncode=2) from None
    except RecursionError:  # json's decoder gives up long before the file ends
        raise CommandError(nesting_problem(what=name), returncode=2) from None
    except ValueError as exc:  # an integer longer than Python converts (sys.get_int_max_str_digits())
        raise CommandError(f"{name} is not valid JSON here: {str(exc).split(';')[0]}", returncode=2) from None
    problem = json_problem(value, what=name, max_depth=MAX_JSON_DEPTH)
    if problem:
        raise CommandError(problem, returncode=2)
    return value
