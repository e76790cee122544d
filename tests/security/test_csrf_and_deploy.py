"""CSRF on every session-authenticated write (API and pages), host and origin checks, and the production
settings read from the environment: secure cookies, HSTS, allowed hosts, trusted origins."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys

import pytest
from django.test import Client
from rest_framework.test import APIClient

from engine.models import Workflow
from tests.api.conftest import make_user
from tests.api.test_roles import ENDPOINTS, fill, state
from tests.conftest import REPO, test_database_url

pytestmark = pytest.mark.django_db

WRITES = [e for e in ENDPOINTS if e.method in ("post", "put", "patch", "delete") and "validate" not in e.path]


def csrf_client(kind: str = "superuser") -> APIClient:
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(make_user(kind))
    client.get("/accounts/login/")  # sets the csrftoken cookie
    return client


@pytest.mark.parametrize("endpoint", WRITES, ids=str)
def test_session_writes_without_the_csrf_token_are_refused_and_change_nothing(endpoint, world):
    client = csrf_client()
    path = fill(endpoint.path, world.pk)
    before = state()
    refused = getattr(client, endpoint.method)(path, endpoint.body, format="json")
    assert refused.status_code == 403, refused.content
    assert refused.json()["error"]["code"] == "csrf_failed"
    assert state() == before
    token = client.cookies["csrftoken"].value
    accepted = getattr(client, endpoint.method)(path, endpoint.body, format="json", HTTP_X_CSRFTOKEN=token)
    assert accepted.status_code == endpoint.success, accepted.content


def test_a_write_from_another_origin_is_refused_even_with_the_token(world):
    client = csrf_client()
    token = client.cookies["csrftoken"].value
    r = client.post(f"/api/runs/{world.pk}/cancel/", HTTP_X_CSRFTOKEN=token, HTTP_ORIGIN="https://evil.example")
    assert r.status_code == 403 and r.json()["error"]["code"] == "csrf_failed"
    world.refresh_from_db()
    assert world.status == "running"


def test_token_authenticated_clients_need_no_csrf_token(world):
    from tests.api.conftest import client_for

    r = client_for("operator").post(f"/api/runs/{world.pk}/cancel/")
    assert r.status_code == 200  # no cookie is involved, so no cross-site request can carry the token


@pytest.mark.parametrize("action", ["archive", "duplicate"])
def test_page_forms_need_the_csrf_token(action, world):
    client = Client(enforce_csrf_checks=True)
    client.force_login(make_user("designer"))
    client.get("/workflows/")
    before = list(Workflow.objects.order_by("slug").values_list("slug", "archived"))
    assert client.post(f"/workflows/mixed/{action}/").status_code == 403
    assert list(Workflow.objects.order_by("slug").values_list("slug", "archived")) == before
    token = client.cookies["csrftoken"].value
    assert client.post(f"/workflows/mixed/{action}/", {"csrfmiddlewaretoken": token}).status_code == 302
    assert list(Workflow.objects.order_by("slug").values_list("slug", "archived")) != before


def test_login_and_logout_forms_need_the_csrf_token():
    from django.contrib.auth.models import User

    User.objects.create_user("pat", password="correct horse battery")
    client = Client(enforce_csrf_checks=True)
    assert client.post("/accounts/login/", {"username": "pat", "password": "correct horse battery"}).status_code == 403
    client.get("/accounts/login/")
    token = client.cookies["csrftoken"].value
    r = client.post("/accounts/login/", {"username": "pat", "password": "correct horse battery",
                                         "csrfmiddlewaretoken": token})
    assert r.status_code == 302
    assert client.post("/accounts/logout/").status_code == 403
    assert client.get("/workflows/").status_code in (200, 403)  # still logged in


def test_unknown_host_headers_are_refused():
    r = Client(HTTP_HOST="evil.example").get("/accounts/login/")
    assert r.status_code == 400


def test_hsts_and_secure_cookies_are_sent_when_configured(settings):
    settings.SECURE_HSTS_SECONDS = 31536000
    settings.SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    settings.SESSION_COOKIE_SECURE = settings.CSRF_COOKIE_SECURE = True
    from django.contrib.auth.models import User

    User.objects.create_user("sam", password="correct horse battery")
    client = Client()
    page = client.get("/accounts/login/", secure=True)
    assert page["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains"
    assert page.cookies["csrftoken"]["secure"]
    r = client.post("/accounts/login/", {"username": "sam", "password": "correct horse battery"}, secure=True)
    assert r.status_code == 302
    session = r.cookies["sessionid"]
    assert session["secure"] and session["httponly"] and session["samesite"] == "Lax"
    assert page["X-Frame-Options"] == "DENY" and page["X-Content-Type-Options"] == "nosniff"


def _manage(*args: str, **env: str) -> subprocess.CompletedProcess:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("WEFT_")}
    environ.update(DATABASE_URL=test_database_url(), PYTHONPATH=str(REPO), WEFT_LOG_FORMAT="text", **env)
    return subprocess.run([sys.executable, str(REPO / "manage.py"), *args], cwd=REPO, env=environ,
                          capture_output=True, text=True, timeout=120)


PRODUCTION = {
    "WEFT_SECRET_KEY": secrets.token_urlsafe(60),
    "WEFT_ALLOWED_HOSTS": "weft.example.com",
    "WEFT_CSRF_TRUSTED_ORIGINS": "https://weft.example.com",
    "WEFT_SECURE_COOKIES": "true",
    "WEFT_HSTS_SECONDS": "31536000",
    "WEFT_HSTS_INCLUDE_SUBDOMAINS": "true",
    "WEFT_HSTS_PRELOAD": "true",
    "WEFT_SSL_REDIRECT": "true",
    "WEFT_BEHIND_TLS_PROXY": "true",
    "WEFT_LOGIN_MAX_FAILURES": "7",
    "WEFT_LOGIN_LOCKOUT_S": "600",
}


@pytest.mark.slow
def test_deploy_check_is_clean_with_the_production_settings_and_warns_without_them():
    clean = _manage("check", "--deploy", "--fail-level", "WARNING", **PRODUCTION)
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert "no issues" in clean.stdout
    bare = _manage("check", "--deploy", WEFT_SECRET_KEY=PRODUCTION["WEFT_SECRET_KEY"])
    for warning in ("security.W004", "security.W008", "security.W012", "security.W016"):
        assert warning in bare.stdout + bare.stderr


@pytest.mark.slow
def test_production_settings_come_from_the_environment():
    code = ("import json; from django.conf import settings as s; print(json.dumps({k: str(getattr(s, k)) for k in "
            "['ALLOWED_HOSTS', 'CSRF_TRUSTED_ORIGINS', 'SESSION_COOKIE_SECURE', 'CSRF_COOKIE_SECURE', "
            "'SECURE_HSTS_SECONDS', 'SECURE_SSL_REDIRECT', 'SECURE_PROXY_SSL_HEADER', 'AXES_FAILURE_LIMIT', "
            "'AXES_COOLOFF_TIME', 'DEBUG']}))")
    out = _manage("shell", "-c", code, **PRODUCTION)
    assert out.returncode == 0, out.stderr
    values = json.loads(out.stdout.strip().splitlines()[-1])
    assert values == {
        "ALLOWED_HOSTS": "['weft.example.com']", "CSRF_TRUSTED_ORIGINS": "['https://weft.example.com']",
        "SESSION_COOKIE_SECURE": "True", "CSRF_COOKIE_SECURE": "True", "SECURE_HSTS_SECONDS": "31536000",
        "SECURE_SSL_REDIRECT": "True", "SECURE_PROXY_SSL_HEADER": "('HTTP_X_FORWARDED_PROTO', 'https')",
        "AXES_FAILURE_LIMIT": "7", "AXES_COOLOFF_TIME": "0:10:00", "DEBUG": "False",
    }
