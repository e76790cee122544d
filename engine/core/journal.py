"""Durable, idempotent sub-steps inside a node: ``ctx.step(key, fn, ...)``.

Each call is a JournalEntry keyed (step run, key): written ``started`` before
``fn`` runs and ``succeeded``/``failed`` after, each write fenced by the step's
attempt number. A later attempt of the same step run returns recorded results
without calling ``fn``. A ``started`` entry with no outcome (the worker died
mid-call) is run again only if it is safe to repeat; otherwise the step is *in
doubt* and waits for an operator.

In a relaxed run (engine.core.durability) the entries of calls safe to repeat commit with synchronous_commit
off: a PostgreSQL crash may lose them, and the call is made again with the same idempotency key. Those of calls
not safe to repeat stay strict, so such a call is never made again because its ``started`` entry was lost.
"""

from __future__ import annotations

import hashlib
import inspect
from collections.abc import Callable
from typing import Any

from engine.core.dbretry import prepared_cursor, with_db_retry
from engine.core.durability import COMMIT_RELAXED
from engine.core.security import OutputInvalid, json_for_storage, storable_text
from engine.exceptions import InDoubt, LeaseLost, NonDeterministicReplay, RecordedError, StepCancelled
from engine.models import JournalEntry
from engine.observability.tracing import journal_span
from engine.statements import compose, execute, load
from engine.states import StepStatus

_SQL = load(__file__, "sql/journal.sql")
JOURNAL_START = compose(_SQL["journal_start"], durability="")
JOURNAL_FINISH = compose(_SQL["journal_finish"], durability="")
# The same in a relaxed run, for calls safe to repeat: committed with synchronous_commit off.
JOURNAL_START_RELAXED = compose(_SQL["journal_start"], durability=COMMIT_RELAXED)
JOURNAL_FINISH_RELAXED = compose(_SQL["journal_finish"], durability=COMMIT_RELAXED)


def idempotency_key(*, run_id, node_id: str, generation: int, key: str) -> str:
    """Stable across attempts of one step run; changes only when an operator reruns the step."""
    raw = f"{run_id}:{node_id}:{generation}:{key}"
    return "weft-" + hashlib.sha256(raw.encode()).hexdigest()[:40]


class Journal:
    """The journal of one step run, as seen by one attempt."""

    def __init__(self, *, step_id: int, attempt: int, key_for: Callable[[str], str],
                 check_live: Callable[[], None], relaxed: bool = False):
        self.step_id = step_id
        self.attempt = attempt
        self.relaxed = relaxed
        self._key_for = key_for
        self._check_live = check_live
        self._recorded: dict[str, JournalEntry] | None = None  # read on the first call: most nodes make none
        self._order: list[str] = []
        self._seen: set[str] = set()
        self.position = 0
        self.replayed = 0
        self.executed = 0

    def step(self, key: str, fn: Callable[..., Any], *args, safe_to_repeat: bool | None = None, **kwargs) -> Any:
        with journal_span(self, key):
            return self._step(key, fn, *args, safe_to_repeat=safe_to_repeat, **kwargs)

    def decision(self, key: str) -> tuple[int, Any]:
        """Take ``key``'s place in the journal's order for an entry written from outside the node (an operator's
        decision, ``engine.services.tool_approvals``): returns (its position, the recorded result, or None while
        nobody has decided). The node waits when it is None; the decision is written at that position."""
        position = self._reserve(key)
        entry = self._recorded.get(key)
        if entry is not None and entry.status == JournalEntry.Status.SUCCEEDED:
            self.replayed += 1
            return position, entry.result
        return position, None

    def _reserve(self, key: str) -> int:
        """The next position, for ``key``, checked against what earlier attempts recorded there."""
        if not isinstance(key, str) or not key or len(key) > 200:
            raise ValueError("journal keys are non-empty strings of at most 200 characters")
        if key in self._seen:
            raise ValueError(f"journal key {key!r} was used twice in one attempt; keys must be unique per step")
        self._check_live()
        if self._recorded is None:
            self._recorded = {e.key: e for e in JournalEntry.objects.filter(step_id=self.step_id).order_by("position")}
            self._order = list(self._recorded)
        position = self.position
        self.position += 1
        self._seen.add(key)
        if position < len(self._order) and self._order[position] != key:
            raise NonDeterministicReplay(
                f"non-deterministic replay at journal position {position}: this attempt asked for {key!r} but an "
                f"earlier attempt recorded {self._order[position]!r}; a node must make the same calls in the same "
                "order on every attempt"
            )
        return position

    def _step(self, key: str, fn: Callable[..., Any], *args, safe_to_repeat: bool | None, **kwargs) -> Any:
        position = self._reserve(key)
        takes_key = accepts_idempotency_key(fn)
        if takes_key:
            kwargs["idempotency_key"] = self._key_for(key)
        safe = takes_key if safe_to_repeat is None else safe_to_repeat
        entry = self._recorded.get(key)
        if entry is not None:
            if entry.status == JournalEntry.Status.SUCCEEDED:
                self.replayed += 1
                return entry.result
            if entry.status == JournalEntry.Status.STARTED and not (safe or entry.safe_to_repeat):
                raise InDoubt(key)
        relaxed = self.relaxed and safe  # a call not safe to repeat is journaled strictly, whatever the run
        entry_id = self._write_started(key, position, safe, relaxed=relaxed)
        self.executed += 1
        try:
            result = fn(*args, **kwargs)
        except StepCancelled:
            raise
        except Exception as exc:
            self._finish(entry_id, "failed", None, storable_text(f"{exc}"[:10000]), type(exc).__name__,
                         relaxed=relaxed)
            raise
        try:
            encoded = json_for_storage(result, what="the result")
        except OutputInvalid as exc:  # NaN, Infinity, NUL, a lone surrogate: the same call would return it again
            self._finish(entry_id, "failed", None, storable_text(str(exc)), "OutputInvalid", relaxed=relaxed)
            raise OutputInvalid(f"journal step {key!r}: {exc}") from None
        except (TypeError, ValueError) as exc:
            self._finish(entry_id, "failed", None, f"result is not JSON-serialisable: {exc}", "TypeError",
                         relaxed=relaxed)
            raise RecordedError(f"journal step {key!r} returned a value that is not JSON-serialisable: {exc}") from None
        self._finish(entry_id, "succeeded", encoded, "", "", relaxed=relaxed)
        return result

    def _write_started(self, key: str, position: int, safe: bool, *, relaxed: bool) -> int:
        statement = JOURNAL_START_RELAXED if relaxed else JOURNAL_START

        def write():
            with prepared_cursor() as cur:
                execute(cur, statement, {"step": self.step_id, "key": key, "position": position, "safe": safe,
                                         "attempt": self.attempt, "running": StepStatus.RUNNING,
                                         "started": JournalEntry.Status.STARTED})
                return cur.fetchone()

        row = with_db_retry(write, what=f"journal {key!r}")
        if row is None:
            raise LeaseLost(f"step no longer held by attempt {self.attempt}; not calling {key!r}")
        return row[0]

    def _finish(self, entry_id: int, status: str, encoded: str | None, error: str, error_type: str, *,
                relaxed: bool) -> None:
        statement = JOURNAL_FINISH_RELAXED if relaxed else JOURNAL_FINISH

        def write():
            with prepared_cursor() as cur:
                execute(cur, statement, {"id": entry_id, "attempt": self.attempt, "status": status,
                                         "result": encoded, "error": error, "error_type": error_type,
                                         "running": StepStatus.RUNNING})
                return cur.rowcount

        if with_db_retry(write, what="journal result") != 1:
                raise LeaseLost(f"step no longer held by attempt {self.attempt}; result of journal entry discarded")


def accepts_idempotency_key(fn: Callable) -> bool:
    try:
        return "idempotency_key" in inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False
