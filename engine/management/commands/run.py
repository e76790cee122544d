"""``manage.py run start SLUG --input JSON [--wait]``."""

from __future__ import annotations

import json
import time

from django.core.management.base import BaseCommand, CommandError

from engine.exceptions import EngineError
from engine.models import Run, StepRun
from engine.services.scheduler import run_start
from engine.states import RUN_TERMINAL, RunStatus


class Command(BaseCommand):
    help = "Start a run of a workflow; with --wait, wait for it and exit 0 only if it succeeded."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        start = sub.add_parser("start")
        start.add_argument("slug")
        start.add_argument("--input", default="{}", help="run inputs as a JSON object")
        start.add_argument("--idempotency-key", default=None)
        start.add_argument("--wait", action="store_true")
        start.add_argument("--timeout", type=float, default=0, help="with --wait: give up after N seconds")

    def handle(self, *args, action, slug, input, idempotency_key, wait, timeout, **options):
        try:
            inputs = json.loads(input)
        except json.JSONDecodeError as exc:
            raise CommandError(f"--input is not valid JSON: {exc}", returncode=2) from None
        try:
            run, created = run_start(workflow=slug, inputs=inputs, idempotency_key=idempotency_key, actor="cli")
        except EngineError as exc:
            raise CommandError(exc.message, returncode=2) from None
        self.stdout.write(f"run {run.pk} {'started' if created else 'already exists'}")
        if not wait:
            return
        deadline = time.monotonic() + timeout if timeout else None
        while run.status not in RUN_TERMINAL:
            if deadline and time.monotonic() > deadline:
                raise CommandError(f"run {run.pk} still {run.status} after {timeout:g} s", returncode=3)
            time.sleep(0.2)
            run = Run.objects.get(pk=run.pk)
        self.stdout.write(f"status: {run.status}")
        if run.outputs is not None:
            self.stdout.write("outputs: " + json.dumps(run.outputs, indent=2, default=str))
        if run.status != RunStatus.SUCCEEDED:
            for node_id, error in StepRun.objects.filter(run=run, status="failed").values_list("node_id", "error"):
                self.stderr.write(f"step {node_id} failed: {error.splitlines()[0] if error else ''}")
            raise CommandError(f"run {run.pk} {run.status}", returncode=1)
