"""The web server freezes its startup heap (engine/operations/heap.py): full collections skip it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

PROBE = """
import gc, sys
import config.asgi
print(gc.get_freeze_count(), "webui.views" in sys.modules, "api.views.runs" in sys.modules)
"""


def test_loading_the_asgi_application_imports_the_views_then_freezes_the_heap():
    result = subprocess.run([sys.executable, "-c", PROBE], cwd=REPO, env=dict(os.environ, PYTHONPATH=str(REPO)),
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    frozen, views, api_views = result.stdout.split()
    assert int(frozen) > 50_000  # Django, Weft's modules, the views: tens of thousands of objects
    assert views == api_views == "True"  # imported before the freeze, so in the frozen heap
