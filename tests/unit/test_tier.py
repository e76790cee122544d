"""The unit tier itself: a test here that opens a database connection fails, whatever it catches."""

from __future__ import annotations

import psycopg
import pytest
from django.db import connection


def test_opening_a_django_connection_fails_the_test_even_inside_except_exception():
    with pytest.raises(pytest.fail.Exception, match="tests/unit touches no database"):
        try:
            connection.ensure_connection()
        except Exception:  # what code under test might do; the failure is not an Exception
            pass


def test_opening_a_psycopg_connection_fails_the_test():
    with pytest.raises(pytest.fail.Exception, match="tests/unit touches no database"):
        psycopg.connect("dbname=postgres")
