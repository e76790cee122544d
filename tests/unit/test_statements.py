"""The loader of named SQL statements: parsing, parameter checks, composition by slots."""

import pytest

from engine.statements import StatementError, compose, execute, parse

TEXT = """-- name: step_get
-- One step by id.
SELECT id FROM engine_steprun WHERE id = %(id)s AND status = %(status)s;

-- name: with_slot
-- A statement with a slot for another.
WITH a AS (SELECT 1)/*{more}*/
SELECT * FROM a

-- name: more
-- The piece the slot takes.
, b AS (SELECT %(x)s)
"""


class Cursor:
    def __init__(self):
        self.executed = []

    def execute(self, sql, params):
        self.executed.append((sql, params))


def test_statements_are_parsed_whole_with_their_comment_and_parameters():
    statements = parse(TEXT)
    assert list(statements) == ["step_get", "with_slot", "more"]
    step_get = statements["step_get"]
    assert step_get.doc == "One step by id."
    assert step_get.sql == "SELECT id FROM engine_steprun WHERE id = %(id)s AND status = %(status)s"
    assert step_get.params == {"id", "status"}


def test_execute_refuses_missing_and_unexpected_parameters():
    step_get = parse(TEXT)["step_get"]
    cursor = Cursor()
    with pytest.raises(StatementError, match=r"missing parameters \['status'\], unexpected \[\]"):
        execute(cursor, step_get, {"id": 1})
    with pytest.raises(StatementError, match=r"unexpected \['other'\]"):
        execute(cursor, step_get, {"id": 1, "status": "queued", "other": 2})
    assert cursor.executed == []
    execute(cursor, step_get, {"id": 1, "status": "queued"})
    assert cursor.executed == [(step_get.sql, {"id": 1, "status": "queued"})]


def test_compose_fills_every_slot_and_fails_loudly_otherwise():
    statements = parse(TEXT)
    whole = compose(statements["with_slot"], name="with_more", more=statements["more"])
    assert whole.name == "with_more"
    assert whole.sql == "WITH a AS (SELECT 1), b AS (SELECT %(x)s)\nSELECT * FROM a"
    assert whole.params == {"x"}
    assert compose(statements["with_slot"], more="").sql == "WITH a AS (SELECT 1)\nSELECT * FROM a"
    with pytest.raises(StatementError, match="has slots"):
        compose(statements["with_slot"])
    with pytest.raises(StatementError, match="has slots"):
        compose(statements["step_get"], more=statements["more"])


@pytest.mark.parametrize("text, message", [
    ("SELECT 1", "every statement starts with"),
    ("-- name: a\n-- doc\n\n-- name: b\n-- doc\nSELECT 1", "'a' is empty"),
    ("-- name: a\n-- doc\nSELECT 1\n-- name: a\n-- doc\nSELECT 2", "defined twice"),
])
def test_malformed_files_are_refused(text, message):
    with pytest.raises(StatementError, match=message):
        parse(text)
