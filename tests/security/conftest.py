"""Fixtures shared with other test packages: a live channel layer, and runs in known states."""

from __future__ import annotations

from tests.api.conftest import mixed_run  # noqa: F401  (fixture: step "bad" failed, "ask" waits for approval)
from tests.api.test_roles import world  # noqa: F401  (fixture: the role matrix's run and credential)
from tests.webui.conftest import live_layer  # noqa: F401  (fixture: channels-postgres on the test database)
