"""Named limits: how many steps of a limit's key run at once, how fast they start, and pauses after a 429.

A node takes limits (``"limits": [{"name": "openai"}, {"name": "per-tenant", "key": "{{ inputs.tenant }}"}]``).
Its step, once queued, gets no broker row: ``steps_wait`` records what it wants (one ``LimitClaim`` per bucket,
a bucket being a limit's share for one key value) and marks it ``waiting_reason = "limit"``. An admission pass
(``limits_admit``) gives broker rows to the waiting steps whose every bucket has a free slot, a token and no
pause, turning their wants into holds. So a waiting step holds no worker, and its limits hold across every
worker on every host: passes are serialised by an advisory lock on the database, and they count what the
database says.

A hold counts against its bucket only while its step is queued or running at the held attempt: every way a
step leaves running (success, failure, retry wait, waiting, cancellation, an expired lease) releases it, and
nothing has to remember to. Passes run in the transaction that queues limited steps, after a limited step's
attempt is recorded, and on a timer in ``runworkers`` (engine.worker.admission), which also serves rates and
pauses that end with time.

Round robin: each waiting step's turn is its place among the waiters of its buckets (the worst of them), so
one waiter of every key comes before a second waiter of any key; ties go to the key served least recently.
Within a bucket, a higher priority comes first, aged by WEFT_PRIORITY_AGING_S (a point per that many seconds
of waiting), so low priority is never starved forever.

Rates are GCRA, and a rate's tokens are taken as late as possible, not when a step is admitted (how long an
admitted step waits for a worker varies, and steps admitted evenly would otherwise start in bunches): an
``http``, ``llm`` or ``agent`` node takes one just before each request it sends (``limits_before_call``), so a
rate counts requests, and an agent's tenth model call waits for its token like the first; any other node
takes one as its attempt starts (``attempt_start``, in the worker). A limit of ``n`` per ``period_s`` spaces
tokens ``(period_s + WEFT_LIMIT_RATE_GUARD_S) / n`` apart, ``burst`` more may go at once; so no window of
``period_s`` sees more than ``n + burst`` of them, even where requests reach the provider a little late.
Admission lets into a rate's bucket the steps whose tokens will be there within ADMIT_AHEAD_S, counting those
admitted and not started yet; their workers wait for the tokens, a fraction of a second.
"""

from __future__ import annotations

import contextlib
import json
import time
from contextvars import ContextVar
from dataclasses import dataclass, field

from django.conf import settings
from django.db import connection, transaction

from engine.core.queues import Delivery, enqueue, step_priority
from engine.statements import execute, load
from engine.states import StepStatus

REASON = "limit"
ADMIT_LOCK_ID = 0x5745_4C4D  # "WELM"
ADMIT_BATCH = 2000
SQL = load(__file__, "sql/limits.sql")
HOLDING = [StepStatus.QUEUED, StepStatus.RUNNING]  # a hold counts while its step is in one of these
# A rate's bucket admits a step when its token will be there within ADMIT_AHEAD_S, so that it is claimed by
# then; the worker waits for the token (START_WAIT_MAX_S at most, else it hands the step back).
ADMIT_AHEAD_S = 0.5
START_WAIT_MAX_S = 1.0
CALL_WAIT_MAX_S = 60.0  # a request inside a running step waits in place this long at most for a rate's token


def rate_interval(limit: int | None, period_s: float | None) -> float | None:
    """Seconds between two starts under a rate of ``limit`` per ``period_s`` (None: no rate)."""
    if not limit or not period_s:
        return None
    return (period_s + float(settings.WEFT_LIMIT_RATE_GUARD_S)) / limit


@dataclass
class Gated:
    """A step a transaction queued whose node takes limits: it waits for admission instead of a broker row."""

    step_id: int
    node_id: str
    attempt: int


# -- waiting ------------------------------------------------------------------------------------------


def steps_wait(tx, gated: list[Gated]) -> tuple[list[tuple[Gated, str]], dict[int, list[dict]]]:
    """Record what the ``gated`` steps of ``tx``'s run want (their keys rendered now), then run a pass in this
    transaction. Returns the steps that cannot wait, with the reason (a key template that failed, a limit that
    no longer exists: the caller fails them), and what each step that waits wants ({step id: [{name, key}]})."""
    wants, failed = [], []
    for g in gated:
        node = tx.graph.node(g.node_id)
        try:
            keys = [(name, key_render(tx, node, template)) for name, template in node.limits]
        except LimitKeyFailed as exc:
            failed.append((g, str(exc)))
            continue
        wants.append((g, step_priority(tx.run.priority, node.priority), keys))
    failing = {g.step_id for g, _ in failed}
    if wants:
        failed.extend(_wants_write(wants))
        failing = {g.step_id for g, _ in failed}
        limits_admit()
    waits = {g.step_id: [{"name": n, "key": k} for n, k in keys] for g, _, keys in wants if g.step_id not in failing}
    return failed, waits


class LimitKeyFailed(Exception):
    pass


def key_render(tx, node, template: str) -> str:
    """A limit's key for one step: its template rendered with what the node's config sees."""
    if not template:
        return ""
    from engine.core.context import upstream_outputs
    from engine.templating import templates as templating

    try:
        upstream, nodes_ctx = upstream_outputs(run_id=tx.run.pk, graph=tx.graph, node=node)
        value = templating.render(template, {"inputs": tx.run.inputs, "nodes": nodes_ctx, "upstream": upstream,
                                             "run": {"id": str(tx.run.pk)}}, path=f"nodes.{node.id}.limits")
    except Exception as exc:  # noqa: BLE001 -- the template's own error, said on the step
        raise LimitKeyFailed(f"node {node.id!r}: a limit's key template failed: {exc}") from None
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
    if len(text) > 200:
        raise LimitKeyFailed(f"node {node.id!r}: a limit's key is {len(text)} characters; at most 200")
    return text


def _wants_write(wants: list[tuple[Gated, int, list[tuple[str, str]]]]) -> list[tuple[Gated, str]]:
    pairs = sorted({pair for _, _, keys in wants for pair in keys})
    names, keys = [p[0] for p in pairs], [p[1] for p in pairs]
    with connection.cursor() as cur:
        execute(cur, SQL["buckets_make"], {"limits": names, "keys": keys})
        execute(cur, SQL["buckets_find"], {"limits": names, "keys": keys})
        bucket_of = {(name, key): bucket for name, key, bucket in cur.fetchall()}
    rows, failed, details = [], [], []
    for g, priority, wanted in wants:
        missing = [name for name, key in wanted if (name, key) not in bucket_of]
        if missing:
            failed.append((g, f"limit {missing[0]!r} does not exist"))
            continue
        rows.extend((g.step_id, g.attempt, bucket_of[pair], priority) for pair in wanted)
        details.append((g.step_id, json.dumps({"limits": [{"name": n, "key": k} for n, k in wanted]})))
    if rows:
        steps, attempts, buckets, priorities = (list(c) for c in zip(*rows, strict=True))
        with connection.cursor() as cur:
            execute(cur, SQL["claims_want"], {
                "steps": steps, "attempts": attempts, "buckets": buckets, "priorities": priorities,
                "reason": REASON, "waiting": [s for s, _ in details], "details": [d for _, d in details]})
    return failed


# -- admission ----------------------------------------------------------------------------------------


@dataclass
class _Bucket:
    id: int
    name: str
    key: str
    concurrency: int | None
    rate_limit: int | None
    period_s: float | None
    burst: int
    tat_in: float | None  # seconds from now to the rate's next free start (negative: past)
    paused_in: float | None  # seconds from now to the end of a pause
    served_in: float | None  # seconds from now to the last service (negative: past)
    in_use: int
    unstarted: int  # holds whose step is admitted but not started: each takes a rate's token when it starts
    changed: bool = False

    @property
    def interval(self) -> float | None:
        return rate_interval(self.rate_limit, self.period_s)

    def blocked(self) -> str | None:
        """What holds a step here: "paused", "concurrency", "rate", or None."""
        if self.paused_in is not None and self.paused_in > 0:
            return "paused"
        if self.concurrency is not None and self.in_use >= self.concurrency:
            return "concurrency"
        if self.interval is not None and self.token_in() > ADMIT_AHEAD_S:
            return "rate"
        return None

    def token_in(self) -> float:
        """Seconds until the token of one more step admitted now would be there: the admitted steps not started
        yet take theirs first, one interval apart (0: at once)."""
        if self.interval is None:
            return 0.0
        return max(max(self.tat_in or 0.0, 0.0) + (self.unstarted - self.burst) * self.interval, 0.0)

    def due_in(self) -> float | None:
        """Seconds until time alone unblocks this bucket (a pause or a rate), or None."""
        why = self.blocked()
        if why == "paused":
            return self.paused_in
        if why == "rate":
            return self.token_in() - ADMIT_AHEAD_S
        return None

    def take(self, served: float) -> None:
        self.in_use += 1
        self.unstarted += 1
        self.served_in = served
        self.changed = True


@dataclass
class _Waiter:
    step_id: int
    attempt: int
    run_id: str
    queue: str
    priority: int
    age: float
    buckets: list[int] = field(default_factory=list)


def limits_admit() -> int:
    """One admission pass (in the caller's transaction, or its own): give broker rows to the waiting steps whose
    buckets all have room, in round-robin order. Returns how many it admitted."""
    with transaction.atomic():
        with connection.cursor() as cur:
            execute(cur, SQL["admit_lock"], {"lock": ADMIT_LOCK_ID})
            execute(cur, SQL["waiting_read"], {"queued": StepStatus.QUEUED, "n": ADMIT_BATCH})
            rows = cur.fetchall()
            if not rows:
                return 0
            waiters: dict[int, _Waiter] = {}
            for step_id, attempt, bucket_id, priority, age, run_id, queue in rows:
                w = waiters.setdefault(step_id, _Waiter(step_id, attempt, str(run_id), queue, priority, age))
                w.buckets.append(bucket_id)
            buckets = _buckets_read(cur, sorted({b for w in waiters.values() for b in w.buckets}))
        admitted = _choose(waiters, buckets)
        if admitted:
            _admitted_write(admitted, buckets)
        return len(admitted)


def _buckets_read(cur, ids: list[int]) -> dict[int, _Bucket]:
    execute(cur, SQL["buckets_read"], {"buckets": ids, "holding": HOLDING, "queued": StepStatus.QUEUED})
    return {row[0]: _Bucket(*row) for row in cur.fetchall()}


def _choose(waiters: dict[int, _Waiter], buckets: dict[int, _Bucket]) -> list[_Waiter]:
    """The waiters to admit now, in order: by turn (the worst place among the waiters of its keyed buckets, so
    that every key's first waiter comes before any key's second), then the key served least recently, then
    priority (aged) and age."""
    aging = max(float(settings.WEFT_PRIORITY_AGING_S), 0.001)

    def rank(w: _Waiter) -> tuple:
        return (-(w.priority + w.age / aging), -w.age, w.step_id)

    place: dict[tuple[int, int], int] = {}
    by_bucket: dict[int, list[_Waiter]] = {}
    for w in waiters.values():
        for b in w.buckets:
            by_bucket.setdefault(b, []).append(w)
    for b, ws in by_bucket.items():
        for i, w in enumerate(sorted(ws, key=rank)):
            place[(b, w.step_id)] = i

    def order(w: _Waiter) -> tuple:
        keyed = [b for b in w.buckets if b in buckets and buckets[b].key]
        turn = max((place[(b, w.step_id)] for b in keyed), default=0)
        served = min((buckets[b].served_in if buckets[b].served_in is not None else float("-inf") for b in keyed),
                     default=0.0)
        return (turn, served, *rank(w))

    admitted, served = [], 0.0
    for w in sorted(waiters.values(), key=order):
        mine = [buckets.get(b) for b in w.buckets]
        if any(b is None or b.blocked() for b in mine):
            continue
        served += 1e-6
        for b in mine:
            b.take(served)
        admitted.append(w)
    return admitted


def _admitted_write(admitted: list[_Waiter], buckets: dict[int, _Bucket]) -> None:
    changed = [b for b in buckets.values() if b.changed]
    with connection.cursor() as cur:
        execute(cur, SQL["claims_hold"], {
            "steps": [w.step_id for w in admitted], "attempts": [w.attempt for w in admitted],
            "buckets": [b.id for b in changed], "served": [b.served_in for b in changed]})
    enqueue([Delivery(w.run_id, w.step_id, w.attempt, w.queue, w.priority) for w in admitted])


def limits_tick() -> float | None:
    """The timer's pass: prune what is over, admit what can start. Returns seconds until a rate or a pause lets
    a waiting step start (None: nothing waits on time)."""
    with connection.cursor() as cur:
        execute(cur, SQL["anything_waiting"], {})
        if not cur.fetchone()[0]:
            return None
        execute(cur, SQL["claims_prune"], {"holding": HOLDING})
    limits_admit()
    with transaction.atomic(), connection.cursor() as cur:
        execute(cur, SQL["waiting_read"], {"queued": StepStatus.QUEUED, "n": ADMIT_BATCH})
        ids = sorted({row[2] for row in cur.fetchall()})
        dues = [d for b in _buckets_read(cur, ids).values() if (d := b.due_in()) is not None]
    return max(min(dues), 0.0) if dues else None


# -- back-pressure ----------------------------------------------------------------------------------------

# The (step id, attempt) of the attempt running in this thread, when its node takes limits (engine.worker.run).
_LIMITED_ATTEMPT: ContextVar[tuple[int, int] | None] = ContextVar("weft_limited_attempt", default=None)


@contextlib.contextmanager
def limited_attempt(*, step_id: int, attempt: int, limited: bool):
    """While a node runs: who ``limits_backpressure`` pauses the buckets of."""
    token = _LIMITED_ATTEMPT.set((step_id, attempt) if limited else None)
    try:
        yield
    finally:
        _LIMITED_ATTEMPT.reset(token)


# -- tokens: a rate's are taken at a start, or just before a request ---------------------------------------


def attempt_start(*, step_id: int, attempt: int, per_call: bool) -> bool:
    """An admitted attempt is about to run: take a token of every rate its buckets have, all or none, waiting up
    to START_WAIT_MAX_S for them; ``per_call``: its node takes tokens as it sends each request instead
    (``limits_before_call``), and nothing is taken here. False: the worker hands the step back to wait for
    admission again, because a bucket is paused (a sibling's 429 since it was admitted) or a token is further
    off than that."""
    return _tokens_await(step_id, attempt, take=not per_call, wait_max=START_WAIT_MAX_S) is None


def _tokens_await(step_id: int, attempt: int, *, take: bool, wait_max: float) -> str | None:
    """Take the attempt's tokens (``take``), waiting for them in place up to ``wait_max`` seconds. Returns None,
    or why not: "paused" (a bucket is) or "rate" (a token is further off)."""
    deadline = time.monotonic() + wait_max
    while True:
        wait = _tokens_take(step_id, attempt, take=take)
        if wait is None:
            return "paused"
        if wait == 0.0:
            return None
        if time.monotonic() + wait > deadline:
            return "rate"
        time.sleep(wait)


def _tokens_take(step_id: int, attempt: int, *, take: bool) -> float | None:
    """Take the attempt's tokens (0.0), or say how long until they are all there (seconds), or None: paused."""
    with transaction.atomic(), connection.cursor() as cur:
        execute(cur, SQL["attempt_buckets_lock"], {"step": step_id, "attempt": attempt})
        rows = cur.fetchall()
        if any(paused_in is not None and paused_in > 0 for *_, paused_in in rows):
            return None
        rated = [(bucket, rate_interval(n, period_s), burst, tat_in)
                 for bucket, n, period_s, burst, tat_in, _ in rows if take and rate_interval(n, period_s)]
        wait = max((max((tat_in or 0.0) - burst * interval, 0.0) for _, interval, burst, tat_in in rated),
                   default=0.0)
        if wait > 0:
            return wait
        if rated:
            execute(cur, SQL["tokens_take"], {"buckets": [r[0] for r in rated], "intervals": [r[1] for r in rated]})
        return 0.0


def limits_before_call() -> str | None:
    """A node that takes its tokens per request (``per_call``: ``http``, ``llm``, ``agent``) is about to send one:
    take a token of each rate of the running attempt's buckets, waiting in place up to CALL_WAIT_MAX_S. Returns
    None (send it, or the node takes no limits), or why it must not be sent; the node then fails the attempt
    as retryable, and its retry waits for admission."""
    current = _LIMITED_ATTEMPT.get()
    if current is None:
        return None
    why = _tokens_await(current[0], current[1], take=True, wait_max=CALL_WAIT_MAX_S)
    if why == "paused":
        return "a limit of this step is paused after a 429"
    if why == "rate":
        return f"a rate limit of this step has no token within {CALL_WAIT_MAX_S:g} s"
    return None


def limits_backpressure(seconds: float | None) -> bool:
    """A call inside the running node got a 429 or 503 asking to retry after ``seconds``. If the step holds
    limits, their buckets pause that long (durably, so its siblings wait too) and True says the node should
    fail the attempt as retryable rather than wait in place: its retry waits for admission, so it runs again
    once the pause is over. False: no limit to pause (or no Retry-After)."""
    current = _LIMITED_ATTEMPT.get()
    if current is None or seconds is None:
        return False
    limits_pause(step_id=current[0], attempt=current[1], seconds=seconds)
    return True



def limits_pause(*, step_id: int, attempt: int, seconds: float) -> None:
    """A call of this attempt was told to wait ``seconds`` (a 429 or 503 with Retry-After): every bucket the
    attempt holds pauses until then, so its siblings stop too. Commits at once (the attempt is still running)."""
    with transaction.atomic(), connection.cursor() as cur:
        execute(cur, SQL["buckets_pause"], {"step": step_id, "attempt": attempt, "seconds": float(seconds)})


# -- what the Limits page shows ----------------------------------------------------------------------------


def limits_status(names: list[str]) -> dict[str, list[dict]]:
    """Per limit: its buckets, each with slots in use, waiting steps, tokens left and the pause."""
    from engine.models import Limit

    limits = {lim.name: lim for lim in Limit.objects.filter(name__in=names)}
    out: dict[str, list[dict]] = {name: [] for name in names}
    with connection.cursor() as cur:
        execute(cur, SQL["limits_status"], {"names": list(names), "holding": HOLDING,
                                             "queued": StepStatus.QUEUED})
        rows = cur.fetchall()
    for name, key, in_use, waiting, tat_in, paused_until, paused in rows:
        lim = limits[name]
        out[name].append({"key": key, "in_use": in_use, "waiting": waiting,
                          "tokens_left": _tokens_left(lim, tat_in),
                          "paused_until": paused_until if paused else None})
    return out


def _tokens_left(lim, tat_in: float | None) -> int | None:
    """How many steps may start now under the limit's rate (None: it has no rate)."""
    interval = rate_interval(lim.rate_limit, lim.rate_period_s)
    if interval is None:
        return None
    ahead = max(tat_in or 0.0, 0.0)
    return max(int((lim.rate_burst * interval - ahead) // interval) + 1, 0)

