"""The plans PostgreSQL makes for what the API and pages ask of a database with history (``bench seed``).

A year of runs is millions of rows in the run, step, attempt, event and journal tables; a statement that reads
one of them whole to filter or sort is fast on a new database and slow on a team's. Every statement that the
endpoints ``bench api`` times send (run lists with each filter, a 1,000-step run's detail, page and timeline, a
workflow's analytics, /metrics, the queues) is explained on a small seeded database, its statistics fresh.
"""

from __future__ import annotations

import re

import pytest
from django.db import connection, transaction

from engine.operations.apibench import endpoints, signed_in_client, statements_of
from engine.operations.seed import TABLES, history_seed

pytestmark = pytest.mark.django_db(transaction=True)

SEQ_SCAN = re.compile(rf"Seq Scan on ({'|'.join(TABLES)})\b")
# A list (a statement with a LIMIT) sorted after reading every row that passes its filter, not read in order
SORTED = re.compile(rf"Sort Key: ({'|'.join(TABLES)})\.")


def _plan(sql: str, params, *, in_order: bool = False) -> str:
    """EXPLAIN; ``in_order``: with index scans only (no bitmap or sequential scans, which never return rows in an
    index's order). On 2,000 runs, collecting 150 failed runs and sorting them can cost less than reading them
    newest first, as it does not on a year's; what is still sorted then could not be read in order."""
    with transaction.atomic(), connection.cursor() as cur:
        if in_order:
            cur.execute("SET LOCAL enable_bitmapscan = off")
            cur.execute("SET LOCAL enable_seqscan = off")
        cur.execute("EXPLAIN " + sql, params)
        return "\n".join(row[0] for row in cur.fetchall())


def test_every_statement_of_the_read_endpoints_finds_its_rows_through_an_index():
    history_seed(runs=2000, wide_runs=1)
    client = signed_in_client()
    explained, offenders = 0, []
    for endpoint in endpoints():
        for sql, params in statements_of(client, endpoint.path):
            if not any(table in sql for table in TABLES):
                continue
            plan = _plan(sql, params)
            explained += 1
            if SEQ_SCAN.search(plan):
                offenders.append(f"{endpoint.name}:\n{sql}\n{plan}")
            elif " LIMIT " in sql and SORTED.search(ordered := _plan(sql, params, in_order=True)):
                offenders.append(f"{endpoint.name}, sorted with no index in its order:\n{sql}\n{ordered}")
    assert explained > 20
    assert not offenders, "\n\n".join(offenders)


def test_the_run_tally_counts_finished_runs_from_an_index_alone():
    """The recovery loop's leader takes the run tally once a minute (engine.observability.run_tally): read from
    the run rows, a million runs took 0.3-0.7 s a tally."""
    from engine.observability.run_tally import SQL, TERMINAL

    history_seed(runs=2000, wide_runs=0)
    with connection.cursor() as cur:
        cur.execute("VACUUM (ANALYZE) engine_run")  # as autovacuum keeps a table's visibility map
        cur.execute("SELECT statement_timestamp()")
        as_of = cur.fetchone()[0]
    plan = _plan(SQL["run_tally_take"].sql, {"as_of": as_of, "run_terminal": TERMINAL})
    assert "Index Only Scan using run_finished_status on engine_run" in plan, plan
