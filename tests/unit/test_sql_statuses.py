"""Statuses written as literals in the ``.sql`` files are statuses the models know.

Most statements take their statuses as parameters, from engine/states.py. A few keep a literal on purpose: a
partial index (``steprun_queued``, ``steprun_running_lease``, ``schedulefire_buffered``, ...) is read in a
generic plan only when the statement names its status literally. Nothing else checks such a literal: a typo
(``'retry_wiat'``) would match no row, and the statement would quietly do nothing. This scan reads every
``.sql`` file under engine/ and checks each quoted literal compared with, assigned to or inserted into a
``status`` or ``outcome`` column against that column's choices (RunStatus, StepStatus, Attempt.Outcome,
ScheduleFire.Status, ...).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.apps import apps

from engine.statements import parse

REPO = Path(__file__).resolve().parents[2]
SQL_FILES = sorted((REPO / "engine").glob("**/sql/*.sql"))
COLUMNS = ("status", "outcome")

_TABLE = re.compile(r"\b(?:FROM|JOIN|UPDATE|INTO)\s+(?P<table>\w+)(?:\s+(?:AS\s+)?(?P<alias>\w+))?", re.I)
_NOT_ALIAS = {"where", "set", "on", "join", "using", "left", "right", "inner", "cross", "full", "group", "order",
              "limit", "with", "values", "select", "returning", "for", "union", "natural", "lateral", "having"}
_COMPARED = re.compile(r"(?:\b(?P<alias>\w+)\.)?\b(?P<column>status|outcome)\s*(?:=|<>|!=)\s*'(?P<value>[^']*)'",
                       re.I)
_IN_LIST = re.compile(r"(?:\b(?P<alias>\w+)\.)?\b(?P<column>status|outcome)\s+(?:NOT\s+)?IN\s*\((?P<items>[^)]*)\)",
                      re.I)
_INSERT = re.compile(r"\bINSERT\s+INTO\s+(?P<table>\w+)\s*\((?P<columns>[^)]*)\)\s*(?P<kind>SELECT|VALUES)\b",
                     re.I)
_LITERAL = re.compile(r"^'(?P<value>[^']*)'$")


def column_choices() -> dict[tuple[str, str], frozenset[str]]:
    """(table, column) -> the values its field allows, for every status or outcome field with choices."""
    found = {}
    for model in apps.get_models():
        for field in model._meta.concrete_fields:
            if field.column in COLUMNS and field.choices:
                found[(model._meta.db_table, field.column)] = frozenset(str(value) for value, _ in field.choices)
    return found


def _without_comments(sql: str) -> str:
    return re.sub(r"--[^\n]*", "", sql)


def _split_top_level(text: str) -> list[str]:
    """``text`` split at the commas outside parentheses and quotes."""
    parts, depth, quoted, current = [], 0, False, []
    for char in text:
        if char == "'":
            quoted = not quoted
        elif not quoted and char == "(":
            depth += 1
        elif not quoted and char == ")":
            depth -= 1
            if depth < 0:
                break
        if char == "," and depth == 0 and not quoted:
            parts.append("".join(current))
            current = []
            continue
        current.append(char)
    parts.append("".join(current))
    return [part.strip() for part in parts]


def _inserted(sql: str):
    """(table, column, literal) for each quoted literal an INSERT puts in a status or outcome column."""
    for insert in _INSERT.finditer(sql):
        columns = [c.strip().lower() for c in insert["columns"].split(",")]
        rest = sql[insert.end():]
        if insert["kind"].upper() == "VALUES":
            rest = rest[rest.index("(") + 1:]
        else:
            rest = re.split(r"\bFROM\b", rest, maxsplit=1, flags=re.I)[0]
        for column, expression in zip(columns, _split_top_level(rest), strict=False):
            literal = _LITERAL.match(expression)
            if column in COLUMNS and literal:
                yield insert["table"], column, literal["value"]


def status_literals(sql: str, choices: dict[tuple[str, str], frozenset[str]]):
    """(literal, the values allowed where it stands, where) for each status literal of one statement."""
    sql = _without_comments(sql)
    aliases: dict[str, str] = {}
    for match in _TABLE.finditer(sql):
        aliases[match["table"].lower()] = match["table"].lower()
        if match["alias"] and match["alias"].lower() not in _NOT_ALIAS:
            aliases[match["alias"].lower()] = match["table"].lower()
    tables = set(aliases.values())
    everything = frozenset().union(*choices.values())

    def allowed(alias: str | None, column: str) -> frozenset[str]:
        column = column.lower()
        if alias:
            table = aliases.get(alias.lower())
            # An alias that names no table with this column (a CTE, a JSON record such as the edges' e) is
            # checked against every status and outcome there is: a typo is caught all the same.
            return choices.get((table, column), everything)
        own = [values for (table, name), values in choices.items() if name == column and table in tables]
        return frozenset().union(*own) if own else everything

    for match in _COMPARED.finditer(sql):
        yield match["value"], allowed(match["alias"], match["column"]), match[0]
    for match in _IN_LIST.finditer(sql):
        for item in re.findall(r"'([^']*)'", match["items"]):
            yield item, allowed(match["alias"], match["column"]), match[0]
    for table, column, value in _inserted(sql):
        yield value, choices.get((table.lower(), column), everything), f"INSERT INTO {table} ({column} '{value}')"


def every_status_literal():
    choices = column_choices()
    for path in SQL_FILES:
        for name, statement in parse(path.read_text(encoding="utf-8"), source=str(path)).items():
            for value, allowed, where in status_literals(statement.sql, choices):
                yield f"{path.relative_to(REPO)}:{name}", value, allowed, where


def test_every_status_literal_in_the_sql_files_is_a_status_of_its_column():
    found = list(every_status_literal())
    unknown = [f"{statement}: {value!r} in {where!r}" for statement, value, allowed, where in found
               if value not in allowed]
    assert not unknown, "status literals that no status enum has:\n" + "\n".join(unknown)
    # The scan sees the literals it is there for (a scan that finds nothing would pass whatever the files say).
    seen = {(statement, value) for statement, value, _, _ in found}
    assert {("engine/worker/sql/claim.sql:oldest_queued", "queued"),
            ("engine/worker/sql/recovery.sql:anything_due", "retry_wait"),
            ("engine/worker/sql/schedules.sql:schedules_next_due", "buffered"),
            ("engine/core/sql/transitions.sql:attempt_start", "running")} <= seen, sorted(seen)


@pytest.mark.parametrize("sql, bad", [
    ("SELECT 1 FROM engine_steprun WHERE status = 'retry_wiat'", "retry_wiat"),
    ("SELECT 1 FROM engine_run r JOIN engine_steprun s ON s.run_id = r.id WHERE r.status IN ('pending', 'waiting')",
     "waiting"),  # a step status, not a run's
    ("UPDATE engine_attempt x SET outcome = 'succeded' WHERE x.id = 1", "succeded"),
    ("INSERT INTO engine_attempt (step_id, number, outcome) SELECT id, 1, 'runing' FROM c", "runing"),
    ("INSERT INTO engine_steprun (id, status) VALUES (%(id)s, 'upstream_faild')", "upstream_faild"),
])
def test_a_misspelt_or_misplaced_status_literal_is_found(sql, bad):
    wrong = [value for value, allowed, _ in status_literals(sql, column_choices()) if value not in allowed]
    assert wrong == [bad]


def test_literals_that_are_not_statuses_are_left_alone():
    sql = ("SELECT 'won', id FROM engine_steprun s WHERE s.waiting_reason = 'subworkflow' AND s.status = 'waiting' "
           "AND jsonb_typeof(s.output) = 'array'")
    assert [value for value, _, _ in status_literals(sql, column_choices())] == ["waiting"]
