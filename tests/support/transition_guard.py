"""A database trigger, generated from engine/states.py's transition table, that refuses any other status change.

Installed on the test database for the whole session (tests/conftest.py), so every test checks it: in-process
code, and the worker processes the worker and chaos tests start on the same database. The trigger's SQL
names no status: it reads the allowed (table, from, to) rows, which are filled from ``RUN_NEXT`` and
``STEP_NEXT``. A new row is not checked: an INSERT is no transition, and the table has no "from" for it.

A test that puts a row back into an earlier status, to replay a race, says so with ``transitions_unchecked()``.
"""

from __future__ import annotations

import contextlib

from django.db import connection, transaction

from engine.models import Run, StepRun
from engine.statements import execute, load
from engine.states import RUN_NEXT, STEP_NEXT

SQL = load(__file__, "transition_guard.sql")
REFUSED = "transition not in engine/states.py"  # the start of the trigger's error message


def allowed_pairs(table: dict[str, frozenset[str]]) -> tuple[list[str], list[str]]:
    """The table's (source, target) pairs as two parallel lists, sorted."""
    pairs = sorted((str(source), str(target)) for source, targets in table.items() for target in targets)
    return [source for source, _ in pairs], [target for _, target in pairs]


def transition_guard_install(*, cursor) -> None:
    """Create (or replace) the table of allowed transitions and the triggers on runs and step runs."""
    execute(cursor, SQL["allowed_table_drop"], {})
    execute(cursor, SQL["allowed_table_create"], {})
    for model, table in ((Run, RUN_NEXT), (StepRun, STEP_NEXT)):
        sources, targets = allowed_pairs(table)
        execute(cursor, SQL["allowed_insert"], {"table_name": model._meta.db_table, "sources": sources,
                                                 "targets": targets})
    execute(cursor, SQL["check_function"], {})
    execute(cursor, SQL["run_trigger"], {})
    execute(cursor, SQL["step_trigger"], {})


@contextlib.contextmanager
def transitions_unchecked():
    """Status changes in this block are not checked: for a test that sets a row up, never for the code under test."""
    with transaction.atomic(), connection.cursor() as cursor:
        execute(cursor, SQL["unchecked_set"], {"unchecked": "on"})
        try:
            yield
        finally:
            execute(cursor, SQL["unchecked_set"], {"unchecked": "off"})
