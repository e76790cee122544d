"""The web server's heap after startup, out of Python's full garbage collections."""

from __future__ import annotations

import gc


def freeze_startup_heap() -> int:
    """Import the URLconf (and with it every view and serializer), collect, and move every object left to the
    permanent generation. Those objects (modules, classes, settings, caches) live as long as the process; a full
    collection no longer walks them. Serving a 1,000-step run allocates enough for a full collection every few
    requests: with about 180,000 startup objects in it, one took about 110 ms (the run detail API's p95 was
    170 ms against a p50 of 44 ms), and about 40 ms frozen. Returns how many objects are frozen."""
    from django.urls import get_resolver

    get_resolver().url_patterns  # noqa: B018 (imports the views)
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()
