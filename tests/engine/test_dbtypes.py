"""Timestamps are read by psycopg's C loader (engine/dbtypes.py) with the values Django's own loader gives."""

from __future__ import annotations

from datetime import UTC

import pytest
from django.db import connection
from django.db.backends.postgresql.psycopg_any import register_tzloader
from psycopg.pq import Format

from engine.dbtypes import _NATIVE, _OID, UtcTimestampLoader

pytestmark = pytest.mark.django_db

VALUES = ["2026-12-04 16:07:23.123456+00", "2026-03-29 01:30:00+05:30", "1970-01-01 00:00:00+00",
          "0001-01-01 00:00:00+00", "9999-12-31 23:59:59.999999+00", "2026-10-25 02:30:00-07", "2024-02-29 12:00:00+14"]


def read(sql: str, params=()):
    with connection.cursor() as cur:
        cur.execute(sql, params)
        return cur.fetchall()


def test_a_connection_reads_timestamps_with_the_native_loader():
    connection.ensure_connection()
    loader = connection.connection.adapters.get_loader(_OID, Format.TEXT)
    assert loader is UtcTimestampLoader
    assert isinstance(loader(_OID).load.__self__, _NATIVE)  # psycopg's own method: no Python frame per value


def test_the_native_loader_reads_what_djangos_reads():
    sql = "SELECT " + ", ".join("%s::timestamptz" for _ in VALUES) + ", now(), NULL::timestamptz"
    ours = read(sql, VALUES)[0]
    connection.ensure_connection()
    raw = connection.connection
    register_tzloader(UTC, raw)  # Django's Python loader
    try:
        djangos = read(sql, VALUES)[0]
    finally:
        raw.adapters.register_loader("timestamptz", UtcTimestampLoader)
    assert ours[:-2] == djangos[:-2] and ours[-1] is djangos[-1] is None
    assert [v.tzinfo for v in ours[:-1]] == [UTC] * (len(VALUES) + 1)
    assert [v.isoformat() for v in ours[:-2]] == [v.isoformat() for v in djangos[:-2]]
