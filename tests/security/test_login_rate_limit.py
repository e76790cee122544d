"""Login rate limiting: after WEFT_LOGIN_MAX_FAILURES failed logins for one username from one address,
that pair is locked out for WEFT_LOGIN_LOCKOUT_S seconds, counted in the database (so every web process
agrees), with a page that says so."""

from __future__ import annotations

from datetime import timedelta

import pytest
from axes.models import AccessAttempt
from django.contrib.auth.models import User
from django.test import Client
from django.utils import timezone

pytestmark = pytest.mark.django_db

PASSWORD = "correct horse battery staple"


@pytest.fixture
def limits(settings):
    settings.AXES_FAILURE_LIMIT = 3
    settings.AXES_COOLOFF_TIME = timedelta(seconds=600)
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # fast, for tests only
    User.objects.create_user("alice", password=PASSWORD)
    User.objects.create_user("bob", password=PASSWORD)
    return settings


def login(username: str, password: str, address: str = "198.51.100.7"):
    client = Client(REMOTE_ADDR=address)
    response = client.post("/accounts/login/", {"username": username, "password": password})
    return client, response


def logged_in(client: Client) -> bool:
    return "_auth_user_id" in client.session


def test_repeated_failures_lock_out_the_username_from_that_address(limits):
    for _ in range(2):
        _, r = login("alice", "wrong")
        assert r.status_code == 200 and b"Please enter a correct username and password" in r.content
    _, third = login("alice", "wrong")
    assert third.status_code == 429
    text = third.content.decode()
    assert "Too many failed logins" in text and "alice" in text and "10 minutes" in text
    assert third["Retry-After"] == "600"

    client, r = login("alice", PASSWORD)  # even the right password, while locked out
    assert r.status_code == 429 and not logged_in(client)
    # The count lives in the database, where every web process reads it.
    assert AccessAttempt.objects.get(username="alice", ip_address="198.51.100.7").failures_since_start >= 3


def test_the_lockout_is_per_username_and_address(limits):
    for _ in range(3):
        login("alice", "wrong")
    client, r = login("bob", PASSWORD)  # another user from the same address
    assert r.status_code == 302 and logged_in(client)
    client, r = login("alice", PASSWORD, address="203.0.113.20")  # the same user from another address
    assert r.status_code == 302 and logged_in(client)


def test_the_lockout_ends_after_the_configured_time(limits):
    for _ in range(3):
        login("alice", "wrong")
    assert login("alice", PASSWORD)[1].status_code == 429
    AccessAttempt.objects.update(attempt_time=timezone.now() - timedelta(seconds=601))
    client, r = login("alice", PASSWORD)
    assert r.status_code == 302 and logged_in(client)


def test_a_successful_login_resets_the_count(limits):
    for _ in range(2):
        login("alice", "wrong")
    assert login("alice", PASSWORD)[1].status_code == 302
    for _ in range(2):
        assert login("alice", "wrong")[1].status_code == 200
    assert login("alice", PASSWORD)[1].status_code == 302


def test_the_admin_login_is_limited_too(limits):
    User.objects.filter(username="alice").update(is_staff=True)
    client = Client(REMOTE_ADDR="198.51.100.7")
    for _ in range(3):
        r = client.post("/admin/login/", {"username": "alice", "password": "wrong"})
    assert r.status_code == 429
    r = client.post("/admin/login/", {"username": "alice", "password": PASSWORD})
    assert r.status_code == 429
