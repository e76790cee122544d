"""The unit tier: plain functions, no database. A test here that asks for one, or opens a connection, fails."""

from __future__ import annotations

import psycopg
import pytest
from django.db.backends.base.base import BaseDatabaseWrapper

DATABASE_FIXTURES = {"db", "transactional_db", "django_db_reset_sequences", "django_db_serialized_rollback",
                     "live_server", "worker_env", "workers"}


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    """Before any fixture: a test here that asks for the database is in the wrong tier."""
    asked = sorted(DATABASE_FIXTURES.intersection(item.fixturenames))
    if item.get_closest_marker("django_db") or asked:
        pytest.fail(f"tests/unit needs no database, and {item.name} asks for one "
                    f"({', '.join(asked) or 'django_db'}): move it to the package's tests folder", pytrace=False)


def _refused(*args, **kwargs):
    pytest.fail("tests/unit touches no database: move this test to the package's tests folder", pytrace=True)


@pytest.fixture(autouse=True)
def no_database(monkeypatch):
    """Opening a database connection fails the test (pytest.fail is not an Exception, so no except hides it)."""
    monkeypatch.setattr(BaseDatabaseWrapper, "ensure_connection", _refused)
    monkeypatch.setattr(psycopg, "connect", _refused)
    monkeypatch.setattr(psycopg.Connection, "connect", classmethod(_refused))
