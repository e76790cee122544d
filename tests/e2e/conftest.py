"""Browser tests: Debian's Chromium driven by Playwright against a real daphne server (a subprocess
on the test database), real worker processes and the real channel layer (channels-postgres)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from engine.operations.webserver import WebServer
from tests.conftest import REPO, TEST_QUEUES, test_database_url

CHROMIUM = "/usr/bin/chromium"
OUTPUT = REPO / "test-output"
BUILD = REPO / "webui" / "static" / "webui" / "build" / "weft.js"
PASSWORD = "e2e-password-1"


def pytest_collection_modifyitems(config, items):
    for item in items:
        if "tests/e2e/" in str(item.fspath):
            item.add_marker(pytest.mark.e2e)
            if not Path(CHROMIUM).exists():
                item.add_marker(pytest.mark.skip(reason=f"{CHROMIUM} is missing (.ci/run installs it)"))


@pytest.fixture(scope="module", autouse=True)
def _orm_beside_playwright_loop():
    """Playwright's sync API runs an event loop in this thread while a browser is open; the tests'
    own ORM calls are still synchronous and safe. Set up before, and undone after, the module's
    browser (below), which is per module so the loop is gone before tests in other packages run
    (async_to_sync refuses to run inside one)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        yield


@pytest.fixture(scope="module")
def playwright():
    from playwright.sync_api import sync_playwright

    pw = sync_playwright().start()
    yield pw
    pw.stop()


@pytest.fixture(scope="module")
def browser_type(playwright, browser_name):
    return getattr(playwright, browser_name or "chromium")


@pytest.fixture(scope="module")
def browser(browser_type, browser_type_launch_args):
    browser = browser_type.launch(**browser_type_launch_args)
    yield browser
    browser.close()


@pytest.fixture(scope="module")
def browser_context_args():
    return {"viewport": {"width": 1600, "height": 1000}}


@pytest.fixture(scope="session")
def browser_type_launch_args():
    return {
        "executable_path": CHROMIUM,
        "args": ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync"],
    }


def _ensure_frontend_built() -> None:
    if BUILD.exists():
        return
    frontend = REPO / "webui" / "frontend"
    npm = shutil.which("npm")
    if npm is None:
        pytest.fail("the front end is not built and npm is missing (make frontend builds it)")
    subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=frontend, check=True)
    subprocess.run([npm, "run", "build"], cwd=frontend, check=True)


@pytest.fixture(scope="session")
def server_env(django_db_setup, tmp_path_factory) -> dict:
    from django.conf import settings

    var = tmp_path_factory.mktemp("weft-var")
    return dict(
        os.environ,
        DATABASE_URL=test_database_url(),
        WEFT_VAR_DIR=str(var),
        # The same key as this process and the workers: broker messages are signed with it.
        WEFT_SECRET_KEY=settings.SECRET_KEY,
        WEFT_TASK_MODULES="tests.tasks,tests.observability.tasks",
        WEFT_QUEUES=json.dumps(TEST_QUEUES),
        WEFT_LEASE_S="3",
        WEFT_RECOVERY_INTERVAL_S="0.3",
        WEFT_CONN_MAX_AGE="600",
        PYTHONPATH=str(REPO),
    )


@pytest.fixture
def worker_env(worker_env, server_env) -> dict:
    return dict(worker_env, WEFT_SECRET_KEY=server_env["WEFT_SECRET_KEY"])


@pytest.fixture(scope="session")
def live_url(server_env):
    """daphne serving config.asgi on a free port, against the test database."""
    _ensure_frontend_built()
    subprocess.run([sys.executable, "manage.py", "collectstatic", "--noinput", "-v0"], cwd=REPO, env=server_env,
                   check=True)
    server = WebServer(server_env, Path(server_env["WEFT_VAR_DIR"]) / "daphne.log").start(timeout=30)
    yield server.url
    server.stop()


@pytest.fixture
def e2e_user(transactional_db):
    from django.contrib.auth.models import Group, User

    user = User.objects.create_user("designer", password=PASSWORD)
    for role in ("viewer", "operator", "designer"):
        user.groups.add(Group.objects.get_or_create(name=role)[0])
    return user


class ConsoleErrors(list):
    allowed: tuple[str, ...] = ()

    def allow(self, *fragments: str) -> None:
        """Messages the test provokes on purpose (a refused save logs its 400 response)."""
        self.allowed += fragments

    def check(self):
        unexpected = [e for e in self if not any(f in e for f in self.allowed)]
        assert not unexpected, "console errors:\n" + "\n".join(unexpected)


@pytest.fixture
def console_errors(page) -> ConsoleErrors:
    errors = ConsoleErrors()
    def on_console(msg):
        if msg.type == "error":
            errors.append(f"{msg.type}: {msg.text} at {msg.location.get('url')}")

    page.on("console", on_console)
    page.on("pageerror", lambda exc: errors.append(f"pageerror: {exc}"))
    return errors


@pytest.fixture
def ui(page, live_url, e2e_user, console_errors):
    """A logged-in page; fails the test on any console error."""
    page.set_default_timeout(15_000)
    page.goto(live_url + "/accounts/login/")
    page.fill("input[name=username]", e2e_user.username)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(live_url + "/")
    page.base = live_url
    yield page
    console_errors.check()


def screenshot(page, name: str) -> Path:
    OUTPUT.mkdir(exist_ok=True)
    path = OUTPUT / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
