"""Hand-written SQL, kept whole in ``.sql`` files and loaded by name.

A file holds named statements, each under a header of two comment lines: its name, and one line saying
what it does and what it guards::

    -- name: step_claim
    -- queued -> running for one (step, attempt), with a lease; nothing if another worker claimed it first.
    UPDATE engine_steprun SET ...

A statement's parameters are psycopg's named placeholders, ``%(name)s``. ``execute`` refuses a call whose
parameters are not exactly the statement's, so a parameter that a statement lost (or never had) is an error
the first time it runs, not a silently dropped guard.

Where two statements must share a piece, the piece is a statement of its own and the larger one names a
slot for it, ``/*{slot}*/`` (an SQL comment, so the statement alone is still valid SQL). ``compose`` fills
slots and fails if a slot is missing from the text or left unfilled. No statement is edited any other way.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

_HEADER = re.compile(r"^-- name: (?P<name>[a-z_][a-z0-9_]*)\n-- (?P<doc>[^\n]+)\n", re.M)
_PARAM = re.compile(r"%\((?P<name>[a-z_][a-z0-9_]*)\)s")
_SLOT = re.compile(r"/\*\{(?P<name>[a-z_][a-z0-9_]*)\}\*/")


class StatementError(Exception):
    """A statement file, a composition or a call that does not fit the statement."""


@dataclass(frozen=True)
class Statement:
    name: str
    doc: str
    sql: str

    @property
    def params(self) -> frozenset[str]:
        return _params_of(self.sql)

    @property
    def slots(self) -> frozenset[str]:
        return frozenset(m["name"] for m in _SLOT.finditer(self.sql))

    def check(self, params: Mapping) -> None:
        """Raise StatementError unless ``params`` has exactly this statement's parameters."""
        expected = self.params
        given = params.keys()
        if given != expected:
            missing, extra = sorted(expected - given), sorted(given - expected)
            raise StatementError(f"statement {self.name!r}: missing parameters {missing}, unexpected {extra}")


_PARAMS_CACHE: dict[str, frozenset[str]] = {}


def _params_of(sql: str) -> frozenset[str]:
    params = _PARAMS_CACHE.get(sql)
    if params is None:
        params = _PARAMS_CACHE[sql] = frozenset(m["name"] for m in _PARAM.finditer(sql))
    return params


class Statements(Mapping):
    """The statements of one ``.sql`` file, by name."""

    def __init__(self, path: Path):
        self.path = path
        self._by_name = parse(path.read_text(encoding="utf-8"), source=str(path))

    def __getitem__(self, name: str) -> Statement:
        try:
            return self._by_name[name]
        except KeyError:
            raise StatementError(f"{self.path.name} has no statement {name!r}") from None

    def __iter__(self):
        return iter(self._by_name)

    def __len__(self) -> int:
        return len(self._by_name)


def load(module_file: str, relative: str) -> Statements:
    """The statements of the file ``relative`` to the directory of ``module_file`` (pass ``__file__``)."""
    return Statements(Path(module_file).resolve().parent / relative)


def parse(text: str, *, source: str = "<sql>") -> dict[str, Statement]:
    headers = list(_HEADER.finditer(text))
    if not headers or text[:headers[0].start()].strip():
        raise StatementError(f"{source}: every statement starts with '-- name: ...' and a one-line comment")
    found: dict[str, Statement] = {}
    for header, following in zip(headers, [*headers[1:], None], strict=True):
        body = text[header.end():following.start() if following else len(text)].strip()
        name = header["name"]
        if not body:
            raise StatementError(f"{source}: statement {name!r} is empty")
        if name in found:
            raise StatementError(f"{source}: statement {name!r} is defined twice")
        found[name] = Statement(name=name, doc=header["doc"].strip(), sql=body.rstrip(";").rstrip())
    return found


def compose(statement: Statement, *, name: str | None = None, **parts: Statement | str) -> Statement:
    """``statement`` with each slot ``/*{slot}*/`` replaced by the text of ``parts[slot]`` (a statement, or ``""``
    to leave it out). Every slot must be given and every part must have its slot."""
    slots = statement.slots
    if slots != parts.keys():
        raise StatementError(f"statement {statement.name!r} has slots {sorted(slots)}; given {sorted(parts)}")
    sql = statement.sql
    for slot, part in parts.items():
        text = part.sql if isinstance(part, Statement) else part
        sql, n = re.subn(re.escape(f"/*{{{slot}}}*/"), lambda _m, text=text: text, sql)
        if n != 1:
            raise StatementError(f"statement {statement.name!r}: slot {slot!r} appears {n} times, not once")
    return Statement(name=name or statement.name, doc=statement.doc, sql=sql)


def execute(cursor, statement: Statement, params: Mapping) -> None:
    """Run ``statement`` on ``cursor`` after checking that ``params`` are exactly its parameters."""
    statement.check(params)
    cursor.execute(statement.sql, params)
