"""The bench's samples run on plans made for tables of some size (engine/operations/bench.py, ``grow``)."""

from __future__ import annotations

import uuid

import pytest
from django.db import connection

from engine.models import StepRun
from engine.operations import bench

pytestmark = pytest.mark.workers

# The foreign-key check PostgreSQL runs for every step, event and attempt it inserts, as its RI trigger plans it:
# once per backend, generic (the key is a parameter), kept until the table's statistics change.
FK_CHECK = "SELECT 1 FROM ONLY public.engine_run x WHERE id = $1 FOR KEY SHARE OF x"


def plan(cur) -> str:
    cur.execute("EXPLAIN EXECUTE fk_check(%s)", [str(uuid.uuid4())])
    return "\n".join(row[0] for row in cur.fetchall())


def test_grow_fills_a_new_database_and_analyzes_it_so_plans_kept_since_it_was_empty_read_the_index(workers):
    workers.start()
    bench.vacuum()  # as the command does first: a new database's tables ANALYZEd empty
    with connection.cursor() as cur:
        cur.execute("SET plan_cache_mode = force_generic_plan")
        cur.execute(f"PREPARE fk_check(uuid) AS {FK_CHECK}")
        try:
            assert "Seq Scan on engine_run" in plan(cur)  # planned for an empty table, and kept
            added = bench.grow(steps=1500)
            assert added >= 1500 and StepRun.objects.count() >= 1500
            after = plan(cur)
            assert "Index" in after and "Seq Scan" not in after, after
        finally:
            cur.execute("DEALLOCATE fk_check")
            cur.execute("RESET plan_cache_mode")
    assert bench.grow(steps=1500) == 0  # grown already: nothing more
