"""Every change of a step's or a run's status, each named once and checked against engine.states' tables.

The general path (``RunTx``), the one-statement paths (engine.core.hotpath), the batch success
(engine.core.outcomes) and inline steps all change statuses through this module: its functions, or the
statement pieces of ``sql/transitions.sql`` that hotpath composes into its statements. Nothing else writes a
status. Each compare-and-set returns whether it won; the events and the run's counters are the caller's
(``RunTx``), written in the same transaction.

Statuses reach SQL as parameters named after them (``%(queued)s``; a run's as ``%(run_running)s``), never as
literals, with one exception said where it stands: a pick that must read a partial index in a generic plan
(``step_claim_next``), whose literal is checked here against engine.states.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from django.conf import settings
from django.db.models import F
from django.db.models.functions import Now

from engine.core.dbretry import prepared_cursor
from engine.exceptions import InvalidTransition
from engine.models import Attempt, StepRun
from engine.statements import Statement, StatementError, compose, load
from engine.states import RUN_TRANSITIONS, STEP_TERMINAL, STEP_TRANSITIONS, RunStatus, StepStatus

S, R = StepStatus, RunStatus

TRANSITION_SQL = load(__file__, "sql/transitions.sql")

# The statuses a statement may compare with or set, by parameter name: %(queued)s, ..., %(run_running)s, ...
STATUS_PARAMS: dict[str, str] = {**{s.value: s.value for s in S}, **{f"run_{r.value}": r.value for r in R}}


class Bound:
    """A statement with the statuses it names bound once: ``params(*given)`` adds them to the given parameters,
    in one dict, and checks the whole against the statement's parameters."""

    __slots__ = ("statement", "sql", "statuses")

    def __init__(self, statement: Statement):
        self.statement = statement
        self.sql = statement.sql
        self.statuses = {name: value for name, value in STATUS_PARAMS.items() if name in statement.params}

    def params(self, *given: Mapping) -> dict:
        params = dict(self.statuses)
        for part in given:
            params.update(part)
        self.statement.check(params)
        return params


# -- the named transitions, checked against the tables at import ----------------------------------


@dataclass(frozen=True)
class Transition:
    name: str
    sources: frozenset[str]
    target: str


def _step_transition(name: str, sources, target: str) -> Transition:
    sources = frozenset(sources)
    if not sources <= STEP_TRANSITIONS[target]:
        raise InvalidTransition(f"transition {name!r}: {sorted(sources - STEP_TRANSITIONS[target])} -> {target} "
                                "is not in engine.states.STEP_NEXT")
    return Transition(name, sources, target)


STEP_CLAIM = _step_transition("claim", {S.QUEUED}, S.RUNNING)
STEP_QUEUE_READY = _step_transition("queue ready", {S.PENDING}, S.QUEUED)  # and on to running: STEP_CLAIM
STEP_RELEASE = _step_transition("release", {S.RUNNING}, S.QUEUED)
STEP_REQUEUE = _step_transition("requeue", STEP_TRANSITIONS[S.QUEUED], S.QUEUED)
STEP_SUCCEED = _step_transition("succeed", {S.RUNNING}, S.SUCCEEDED)
STEP_INLINE_SUCCEED = _step_transition("inline succeed", {S.PENDING}, S.SUCCEEDED)
STEP_INLINE_FAIL = _step_transition("inline fail", {S.PENDING}, S.FAILED)
STEP_CHAIN_CLAIM = _step_transition("chained claim", {S.PENDING}, S.QUEUED)  # and on to running: STEP_CLAIM

# What each statement piece of transitions.sql does, and the status parameters it must compare with and set.
_PIECES: dict[str, tuple[tuple[Transition, ...], frozenset[str]]] = {
    "claim_set": ((STEP_CLAIM,), frozenset({"running"})),
    "step_claim": ((STEP_CLAIM,), frozenset({"queued"})),
    "step_claim_next": ((STEP_CLAIM,), frozenset()),
    "steps_queue_ready": ((STEP_QUEUE_READY, STEP_CLAIM), frozenset({"pending", "queued", "running"})),
    "steps_release": ((STEP_RELEASE,), frozenset({"running", "queued"})),
    "step_succeed": ((STEP_SUCCEED,), frozenset({"running", "succeeded"})),
    "successor_claim": ((STEP_CHAIN_CLAIM, STEP_CLAIM), frozenset({"running"})),
    "run_succeed_set": ((), frozenset({"run_succeeded"})),
}


def _check_pieces() -> None:
    """Each status-changing piece names the statuses of its transitions as parameters; the one literal
    (step_claim_next's pick of the partial index steprun_run_queued) is StepStatus.QUEUED."""
    for name, (_transitions, statuses) in _PIECES.items():
        missing = statuses - TRANSITION_SQL[name].params
        if missing:
            raise StatementError(f"transitions.sql {name!r} lost its status parameters {sorted(missing)}")
    if f"status = '{S.QUEUED.value}'" not in TRANSITION_SQL["step_claim_next"].sql:
        raise StatementError("transitions.sql 'step_claim_next' must pick queued steps by the literal status")
    if R.RUNNING not in RUN_TRANSITIONS[R.SUCCEEDED]:
        raise InvalidTransition("run_succeed_set: running -> succeeded is not in engine.states.RUN_NEXT")


_check_pieces()


def step_check(step, to: str) -> None:
    """Raise InvalidTransition unless a step in ``step.status`` may become ``to``."""
    if step.status not in STEP_TRANSITIONS[to]:
        raise InvalidTransition(f"step {step.node_id!r} is {step.status}; it cannot become {to}")


def step_moved(step, to: str, *, attempt: int | None = None) -> None:
    """The caller's copy of a step after a compare-and-set it won."""
    step.status = to
    if attempt is not None:
        step.attempt = attempt


def run_move(current: str, to: str, fields: dict) -> dict:
    """The changes of a run's ``current -> to`` (with ``fields``), for the transaction to write; raises
    InvalidTransition if the table does not allow it."""
    if current not in RUN_TRANSITIONS[to]:
        raise InvalidTransition(f"run is {current}; it cannot become {to}")
    return {"status": to, **fields}


# -- the general path's compare-and-sets (the ORM) -------------------------------------------------


def step_move(step, to: str, *, attempt: int | None = None, **fields) -> bool:
    """Compare-and-set one step's status from ``step.status`` (what the caller saw) to ``to``, and with
    ``attempt``, only at that attempt (the fencing token). Returns whether this caller won."""
    step_check(step, to)
    qs = StepRun.objects.filter(pk=step.id, status=step.status)
    if attempt is not None:
        qs = qs.filter(attempt=attempt)
    if to in STEP_TERMINAL:
        fields.setdefault("finished_at", Now())
    return qs.update(status=to, **fields) == 1


def step_requeue(step, *, next_attempt: int, **fields) -> bool:
    """``step.status`` (at ``step.attempt``) -> queued with a new attempt number, and ``fields`` (an error to
    keep) in the same compare-and-set. Returns whether it won; the broker row is the caller's."""
    if step.status not in STEP_REQUEUE.sources:
        raise InvalidTransition(f"step {step.node_id!r} is {step.status}; it cannot be queued")
    return StepRun.objects.filter(pk=step.id, status=step.status, attempt=step.attempt).update(
        status=S.QUEUED, attempt=next_attempt, queued_at=Now(), next_attempt_at=None, lease_expires_at=None,
        worker="", finished_at=None, broker_msg_id=None, **fields) == 1


def step_inline_finish(step, *, error: str, output, traceback: str, worker: str) -> str:
    """A ready inline step's outcome: pending -> succeeded (or failed, with ``error``) as its next attempt,
    with its Attempt row. Returns the new status, or "" if the step was no longer pending."""
    to = STEP_INLINE_FAIL.target if error else STEP_INLINE_SUCCEED.target
    step_check(step, to)
    won = StepRun.objects.filter(pk=step.id, status=step.status).update(
        status=to, attempt=F("attempt") + 1, output=output, error=error, queued_at=Now(), started_at=Now(),
        finished_at=Now(), worker=worker,
    )
    if not won:
        return ""
    Attempt.objects.create(step_id=step.id, number=step.attempt + 1, queued_at=Now(), started_at=Now(),
                           finished_at=Now(), worker=worker, outcome=to, error=error,
                           error_type=error.split(":", 1)[0] if error else "", traceback=traceback)
    return to


# -- the statements ------------------------------------------------------------------------------

_CLAIM_BY_ID = compose(TRANSITION_SQL["step_claim"], claim_set=TRANSITION_SQL["claim_set"], guard="")
_CLAIM_NEXT = compose(TRANSITION_SQL["step_claim_next"], claim_set=TRANSITION_SQL["claim_set"])
ATTEMPT_START = TRANSITION_SQL["attempt_start"]

# The claim of one (step, attempt), and of a run's oldest queued steps on a queue, as whole statements with
# their Attempt rows and broker messages (steps_claim runs them).
CLAIM = compose(TRANSITION_SQL["steps_claimed"], name="step_claim", claim=_CLAIM_BY_ID, attempt_start=ATTEMPT_START)
CLAIM_NEXT = compose(TRANSITION_SQL["steps_claimed"], name="step_claim_next", claim=_CLAIM_NEXT,
                     attempt_start=ATTEMPT_START)
QUEUE_READY = Bound(compose(TRANSITION_SQL["steps_queue_ready"], attempt_start=ATTEMPT_START))
RELEASE = Bound(TRANSITION_SQL["steps_release"])
STEPS_SUCCEED = Bound(compose(TRANSITION_SQL["steps_succeed"], step_succeed=TRANSITION_SQL["step_succeed"],
                              attempt_succeed=TRANSITION_SQL["attempt_succeed"]))
_CLAIMS = {CLAIM.name: Bound(CLAIM), CLAIM_NEXT.name: Bound(CLAIM_NEXT)}


def claimed_step(row: tuple, *, worker: str) -> StepRun:
    """A step a claim returned (id, run_id, node_id, node_type, queue, attempt, generation, queued_at), now
    running for ``worker``."""
    step_id, run_id, node_id, node_type, queue, attempt, generation, queued_at = row
    return StepRun(id=step_id, run_id=run_id, node_id=node_id, node_type=node_type, queue=queue,
                   status=STEP_CLAIM.target, attempt=attempt, generation=generation, queued_at=queued_at,
                   worker=worker)


def steps_claim(statement: Statement, params: dict) -> list[StepRun]:
    """Run a claim (CLAIM, CLAIM_NEXT): queued -> running with a lease, the Attempt row written and the broker
    message dropped in the same statement (the step is held by its lease now, the message has done its job)."""
    bound = _CLAIMS[statement.name]
    with prepared_cursor() as cur:
        cur.execute(bound.sql, bound.params({"lease": settings.WEFT_LEASE_S, **params}))
        rows = cur.fetchall()
    return [claimed_step(row, worker=params["worker"]) for row in rows]


def steps_queue_ready(*, ids: list[int], kinds: list[str], worker: str) -> list[tuple]:
    """pending -> queued (new attempt) for ``ids``, each of its kind in ``kinds``: "claim" goes on to running for
    ``worker``; "deliver" gets the id of the broker message engine.core.queues.enqueue will write for it; "gate"
    (waiting for a limit's admission) neither. Returns the rows that moved: the claim's columns (see
    claimed_step), then the status and the message id (None but for "deliver")."""
    with prepared_cursor() as cur:
        cur.execute(QUEUE_READY.sql, QUEUE_READY.params({"ids": ids, "kinds": kinds, "worker": worker,
                                                         "lease": settings.WEFT_LEASE_S}))
        return cur.fetchall()


def steps_release(*, steps: list[StepRun]) -> list[tuple]:
    """running -> queued, same attempt, for claimed ``steps`` that never started. Returns (id, node_id, attempt,
    queue) of those that moved."""
    with prepared_cursor() as cur:
        cur.execute(RELEASE.sql, RELEASE.params({"ids": [s.pk for s in steps], "attempts": [s.attempt for s in steps]}))
        return cur.fetchall()


def steps_succeed(*, run_id, items: str, edges: str) -> list[tuple]:
    """running -> succeeded for successful attempts of one running run (``items``, a JSON list) and their
    successors' counters (``edges``, a JSON list), in one statement. Returns its rows (see steps_succeed in
    transitions.sql)."""
    with prepared_cursor() as cur:
        cur.execute(STEPS_SUCCEED.sql, STEPS_SUCCEED.params({"items": items, "edges": edges, "run": run_id}))
        return cur.fetchall()
