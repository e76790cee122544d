"""Demo workflows (the JSON files in this folder), loaded by ``manage.py load_demos`` (and ``manage.py up``)."""

from __future__ import annotations

import json
from pathlib import Path

DEMO_DIR = Path(__file__).resolve().parent


def demo_definitions() -> list[dict]:
    return [json.loads(path.read_text()) for path in sorted(DEMO_DIR.glob("*.json"))]


def demos_load(*, update: bool = False) -> list[tuple[str, str]]:
    """Save each demo workflow that does not exist yet (``update``: also bring changed ones up to date).

    Returns (slug, what happened) pairs. A demo someone has since edited is left alone unless ``update``.
    """
    from engine.models import Workflow  # here, so that the demo MCP server (python -m ...) needs no Django
    from engine.services.workflows import workflow_save

    done = []
    for definition in demo_definitions():
        slug = definition["slug"]
        if Workflow.objects.filter(slug=slug).exists() and not update:
            done.append((slug, "exists"))
            continue
        _, version, created = workflow_save(definition=definition, note="demo workflow")
        done.append((slug, f"saved version {version.number}" if created else "up to date"))
    return done
