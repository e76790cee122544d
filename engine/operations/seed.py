"""``bench seed``: a database after a year of use, written with COPY (docs/benchmarks.md).

Finished runs of a few ``seed-*`` workflows (about ten steps each), spread over a period (by default the past
year), mostly succeeded, some failed after their retries and some cancelled, with what the engine writes for
them: steps, attempts (with their log lines and model-call metrics), the gapless events, journal entries of
model calls and ``ctx.step`` sub-steps; and a few runs of a 1,000-step workflow. Ids come from the tables'
sequences, so rows the engine inserts later never collide with them. The rows are laid out as the engine's
transitions leave them (engine/states.py); see ``tests/engine/test_seed.py``.
"""

from __future__ import annotations

import json
import random
import time
import uuid
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cache

from django.db import connection, transaction
from django.utils import timezone

from engine import statements
from engine.ids import uuid7
from engine.operations.seed_workflows import ERRORS, WIDE_SLUG, Node, Plan, seed_plans

SQL = statements.load(__file__, "sql/seed.sql")
TABLES = ("engine_run", "engine_steprun", "engine_attempt", "engine_event", "engine_journalentry")
COLUMNS = {
    "engine_run": ("id", "workflow_id", "version_id", "status", "inputs", "outputs", "error", "idempotency_key",
                   "request_hash", "unfinished_steps", "last_seq", "trigger", "created_at", "started_at",
                   "finished_at", "durability", "priority"),
    "engine_steprun": ("id", "run_id", "node_id", "node_type", "queue", "status", "attempt", "generation",
                       "remaining_upstream", "upstream_succeeded", "upstream_failed", "upstream_skipped", "output",
                       "error", "waiting_reason", "heartbeat_at", "worker", "queued_at", "broker_msg_id",
                       "started_at", "finished_at"),
    "engine_attempt": ("id", "step_id", "number", "queued_at", "started_at", "finished_at", "worker", "outcome",
                       "error", "error_type", "traceback", "logs", "metrics"),
    "engine_event": ("id", "run_id", "seq", "type", "node_id", "payload", "actor", "created_at"),
    "engine_journalentry": ("id", "step_id", "key", "position", "status", "safe_to_repeat", "attempt", "result",
                            "error", "error_type", "started_at", "finished_at"),
}
MS = timedelta(milliseconds=1)
WORKERS = [f"weft-worker-{h}:{pid}" for h in range(1, 4) for pid in (18231, 18232, 21407, 30115)]
USERS = ("alice", "bob", "chandra", "dmitri")
ENDPOINT = "6c1f4ad2-5f43-4b7e-a0de-51d2c0a7b001"  # a webhook endpoint's id, as its runs' triggers name it
TRACEBACK = ('Traceback (most recent call last):\n  File "/app/engine/worker/run.py", line 92, in node_run\n'
             "    result = impl.run(ctx, dict(config))\n{error_type}: {message}\n")
# How long a node of each type runs, in seconds (uniform between the two).
DURATION = {"http": (0.05, 1.2), "llm": (0.6, 9.0), "python": (0.01, 2.5), "noop": (0.0005, 0.003)}


@dataclass
class Seeded:
    """What a seed wrote: runs, rows per table, seconds spent writing and in VACUUM (ANALYZE)."""

    runs: int = 0
    rows: dict[str, int] = field(default_factory=lambda: {t: 0 for t in TABLES})
    copy_s: float = 0.0
    analyze_s: float = 0.0

    @property
    def total_rows(self) -> int:
        return sum(self.rows.values())


# -- one run's rows -----------------------------------------------------------------------------


@dataclass
class RunSpec:
    plan: Plan
    version: int
    created_at: datetime
    status: str
    failing: int | None = None  # a failed run: the step that failed all its attempts
    cut: int | None = None  # a cancelled run: the step running when it was cancelled
    retried: frozenset[int] = frozenset()  # steps whose first attempt failed and second succeeded
    trigger: str = "manual"


def _spec(rng: random.Random, plan: Plan, created_at: datetime, *, recent: bool) -> RunSpec:
    n = len(plan.nodes)
    roll = rng.random()
    status = "succeeded" if roll < 0.88 else "failed" if roll < 0.96 else "cancelled"
    kinds, weights = zip(*plan.triggers.items(), strict=True)
    spec = RunSpec(plan=plan, version=plan.versions[-1] if recent else plan.versions[0], created_at=created_at,
                   status=status, trigger=rng.choices(kinds, weights)[0],
                   retried=frozenset(i for i in range(n) if rng.random() < 0.03))
    if status == "failed":
        spec.failing = rng.randrange(n)
    elif status == "cancelled":
        spec.cut = rng.randrange(n)
    return spec


class Rows:
    """The rows of a chunk of runs, per table; their attempts', events' and journal entries' ids are drawn once
    they are counted."""

    def __init__(self):
        self.by_table: dict[str, list[list]] = {t: [] for t in TABLES}


def _trigger(spec: RunSpec, run_id: uuid.UUID) -> tuple[str, str | None]:
    """The run's trigger (as engine.services.scheduler.run_trigger records it) and idempotency key."""
    kind = spec.trigger
    if kind in ("manual", "api"):
        user = USERS[run_id.int % len(USERS)] if kind == "manual" else "ci-bot"
        return f'{{"kind": "{kind}", "user": "{user}"}}', None
    if kind == "schedule":
        at = spec.created_at.replace(second=0, microsecond=0).isoformat()
        return f'{{"kind": "schedule", "schedule": 1, "scheduled_for": "{at}"}}', None
    if kind == "webhook":
        delivery = f"msg_{run_id.hex[:20]}"
        return (f'{{"kind": "webhook", "endpoint": "{ENDPOINT}", "delivery_id": "{delivery}"}}',
                f"webhook:{ENDPOINT}:{delivery}")
    event_id = f"evt_{run_id.hex[:16]}"
    return (f'{{"kind": "event", "event_id": "{event_id}", "name": "lead.created", "trigger_id": 1}}',
            f"event:{event_id}")


@cache
def _json(*items: tuple[str, object]) -> str:
    """A small JSON object, made once per distinct content (most events' payloads repeat)."""
    return json.dumps(dict(items))


def _logs(node: Node, began: datetime, error: str) -> str:
    if node.type == "noop":
        return "[]"
    t = began.timestamp()
    return (node.logs_failed if error else node.logs_ok) % (t, t + 0.004, t + 0.011)


def run_rows(rows: Rows, spec: RunSpec, step_ids: list[int], broker_id: int, rng: random.Random) -> None:
    """Append one finished run's rows, as the engine's transitions leave them: each step's attempts, the events
    numbered from 1 without a gap, the run's counters and outputs."""
    t_run = spec.created_at
    run_id = uuid7(int(t_run.timestamp() * 1000))  # as the engine makes them (engine/ids.py), at the run's creation
    plan, nodes = spec.plan, spec.plan.nodes
    started = t_run + MS * rng.uniform(0.3, 3)
    steps, attempts, journal = rows.by_table["engine_steprun"], rows.by_table["engine_attempt"], \
        rows.by_table["engine_journalentry"]
    events: list[list] = []

    def event(kind: str, node_id: str, payload: str, at: datetime, actor: str = "") -> None:
        events.append([None, run_id, len(events) + 1, kind, node_id, payload, actor, at])

    event("run.running", "", "{}", t_run)
    finish: dict[int, datetime] = {}
    status: dict[int, str] = {}
    blocked = nodes[spec.failing].descendants if spec.failing is not None else frozenset()
    cancelled_at = None
    for i, node in enumerate(nodes):
        step = [step_ids[i], run_id, node.id, node.type, node.queue, "succeeded", 1, 0, 0, 0, 0, 0, node.output,
                "", "", None, "", None, broker_id if i == 0 else None, None, None]
        steps.append(step)
        if i in blocked:
            continue  # upstream_failed when the step it depends on failed: below
        if spec.cut is not None and i > spec.cut:  # still pending when its run was cancelled
            step[5:7], step[12], step[20] = ["cancelled", 0], None, cancelled_at
            event("step.cancelled", node.id, _json(("from", "pending")), cancelled_at, "alice")
            finish[i], status[i] = cancelled_at, "cancelled"
            continue
        ready = max((finish[u] for u in node.upstream), default=started)
        worker = WORKERS[rng.randrange(len(WORKERS))]
        tries = 1 if i == spec.cut else 3 if i == spec.failing else 2 if i in spec.retried else 1
        queued = ready + MS * rng.uniform(0.5, 5)
        low, high = DURATION[node.type]
        step[9] = sum(1 for u in node.upstream if status.get(u) == "succeeded")
        for n in range(1, tries + 1):
            began = queued + MS * rng.uniform(1, 30)
            ended = began + timedelta(seconds=rng.uniform(low, high))
            event("step.queued", node.id, _json(("from", "pending" if n == 1 else "retry_wait"), ("attempt", n)),
                  queued, "" if n == 1 else "recovery")
            event("step.running", node.id, _json(("from", "queued"), ("worker", worker), ("attempt", n)), began)
            last = n == tries
            if i == spec.cut:
                outcome = "cancelled"
                cancelled_at = ended
                event("run.cancelled", "", _json(("error", "cancelled")), ended, "alice")
                event("step.cancelled", node.id, _json(("from", "running")), ended, "alice")
            else:
                outcome = "succeeded" if last and i != spec.failing else "failed"
            error_type, message = ERRORS[node.type] if outcome == "failed" else ("", "")
            error = f"{error_type}: {message}" if error_type else ""
            metrics = "{}"
            if node.type == "llm" and outcome == "succeeded":
                prompt, completion = rng.randrange(200, 3000), rng.randrange(30, 600)
                usage = (f'"total_tokens": {prompt + completion}, "prompt_tokens": {prompt}, '
                         f'"completion_tokens": {completion}')
                latency = round((ended - began).total_seconds() * 1000, 1)
                metrics = (f'{{"model": "gpt-4o-mini", "cost_usd": {round(prompt * 1.5e-7 + completion * 6e-7, 6)}, '
                           f'"llm_calls": 1, "latency_ms": {latency}, {usage}}}')
            attempts.append([None, step[0], n, queued, began, ended, worker, outcome, error, error_type,
                             TRACEBACK.format(error_type=error_type, message=message) if error else "",
                             _logs(node, began, error), metrics])
            if outcome == "failed" and not last:
                wait = rng.uniform(1, 4) * n
                event("step.retry_wait", node.id, json.dumps({"from": "running", "error": error, "attempt": n,
                                                              "retry_in_s": round(wait, 3)}), ended)
                queued = ended + timedelta(seconds=wait)
            elif outcome == "failed":
                event("step.failed", node.id, _json(("from", "running"), ("error", error), ("attempt", n)), ended)
            elif outcome == "succeeded":
                event("step.succeeded", node.id, _json(("from", "running")), ended)
        for position, key in enumerate(node.journal):
            state = outcome if outcome != "cancelled" else "started"  # a cancelled call never finished
            result = None
            if state == "succeeded" and key == "completion":
                result = (f'{{"model": "gpt-4o-mini", "usage": {{{usage}}}, "message": {node.reply}, '
                          f'"finish_reason": "stop", "latency_ms": {latency}}}')
            elif state == "succeeded":
                result = f'{{"id": {rng.randrange(10**6)}, "ok": true}}'
            journal.append([None, step[0], key, position, state, key == "completion", tries, result, error,
                            error_type, began + MS * (position + 1), ended if state != "started" else None])
        step[5], step[6] = outcome, tries
        step[12] = node.output if outcome == "succeeded" else None
        step[13] = error if outcome == "failed" else ""
        step[15:21] = [began, worker, queued, step[18], began, ended]
        finish[i], status[i] = ended, outcome
        if i == spec.failing:  # its descendants never run
            for d in sorted(blocked):
                event("step.upstream_failed", nodes[d].id, _json(("from", "pending")), ended)
    for d in blocked:
        step = steps[-len(nodes) + d]
        step[5], step[6], step[10], step[12], step[20] = "upstream_failed", 0, 1, None, finish[spec.failing]
        step[9] = sum(1 for u in nodes[d].upstream if status.get(u) == "succeeded")
    ended = max([*finish.values(), cancelled_at or started]) + MS * rng.uniform(0.2, 2)
    outputs, error = None, ""
    if spec.status == "succeeded":
        outputs = plan.outputs
        event("run.succeeded", "", _json(("error", "")), ended)
    elif spec.status == "failed":
        error = f"step(s) failed: {nodes[spec.failing].id}"
        if blocked:
            error += f"; blocked by a failure (upstream failed): {', '.join(nodes[d].id for d in sorted(blocked))}"
        event("run.failed", "", json.dumps({"error": error}), ended)
    else:
        error, ended = "cancelled", cancelled_at
    trigger, key = _trigger(spec, run_id)
    inputs = f'{{"ticket": {step_ids[0]}, "customer": "cus_{step_ids[0] % 9973:04d}", "priority": "normal"}}'
    rows.by_table["engine_run"].append([
        run_id, plan.workflow_id, spec.version, spec.status, inputs, outputs, error, key,
        f"{rng.getrandbits(256):064x}", 0, len(events), trigger, t_run, started, ended, "strict", 0])
    rows.by_table["engine_event"].extend(events)


# -- the chunks ---------------------------------------------------------------------------------


def _ids(cur, table: str, n: int) -> list[int]:
    statements.execute(cur, SQL["seed_ids"], {"table": table, "n": n})
    return cur.fetchone()[0]


def _rows_build(specs: list[RunSpec], step_ids: list[int], broker_ids: list[int], rng: random.Random) -> Rows:
    rows = Rows()
    k = 0
    for spec, broker_id in zip(specs, broker_ids, strict=True):
        n = len(spec.plan.nodes)
        run_rows(rows, spec, step_ids[k:k + n], broker_id, rng)
        k += n
    return rows


def _chunk_write(specs: list[RunSpec], step_ids: list[int], broker_ids: list[int], rng: random.Random,
                 ) -> dict[str, int]:
    """A chunk's rows, built and copied in one transaction on this thread's own connection: the ids of its
    attempts, events and journal entries drawn once they are counted, then COPY table by table. Rows per table."""
    try:
        rows = _rows_build(specs, step_ids, broker_ids, rng)
        with transaction.atomic(), connection.cursor() as cur:
            for table in ("engine_attempt", "engine_event", "engine_journalentry"):
                table_rows = rows.by_table[table]
                for row, row_id in zip(table_rows, _ids(cur, table, len(table_rows)), strict=True):
                    row[0] = row_id
            for table in TABLES:
                with cur.copy(f"COPY {table} ({', '.join(COLUMNS[table])}) FROM STDIN") as copy:
                    for row in rows.by_table[table]:
                        copy.write_row(row)
        return {table: len(table_rows) for table, table_rows in rows.by_table.items()}
    finally:
        connection.close()


def history_seed(*, runs: int, wide_runs: int = 3, oldest: timedelta = timedelta(days=365),
                 newest: timedelta = timedelta(0), chunk: int = 1000, seed: int = 1, threads: int = 2,
                 progress=None) -> Seeded:
    """Write ``runs`` finished runs of the seeded workflows created between ``oldest`` and ``newest`` ago, oldest
    first (as they would have been inserted), and ``wide_runs`` succeeded runs of the 1,000-step workflow; then
    VACUUM (ANALYZE) the tables, as autovacuum would have after a year. Chunks of ``chunk`` runs are written by
    ``threads`` threads, each on its own connection, so that PostgreSQL takes them on as many cores.
    ``progress(seeded)`` after each chunk."""
    plans, wide = seed_plans()
    rng = random.Random(seed)
    now = timezone.now()
    start, span = now - oldest, oldest - newest
    switch = start + span / 2  # runs of the second half started on each workflow's second version
    choices, weights = zip(*plans, strict=True)

    def chunks():
        for first in range(0, runs, chunk):
            specs = []
            for i in range(first, min(runs, first + chunk)):
                at = start + span * ((i + rng.random()) / runs)
                specs.append(_spec(rng, rng.choices(choices, weights)[0], at, recent=at >= switch))
            yield specs
        wides = []
        for k in range(wide_runs):
            spec = _spec(rng, wide, start + span * ((k + 0.5) / wide_runs), recent=True)
            spec.status, spec.failing, spec.cut = "succeeded", None, None
            wides.append(spec)
        if wides:
            yield wides

    seeded = Seeded()

    def done(futures) -> None:
        for future in futures:
            for table, n in future.result().items():
                seeded.rows[table] += n
            seeded.runs = seeded.rows["engine_run"]
            if progress:
                progress(seeded)

    t0 = time.perf_counter()
    with ThreadPoolExecutor(max_workers=threads) as pool:
        pending: set = set()
        for specs in chunks():
            with connection.cursor() as cur:
                step_ids = _ids(cur, "engine_steprun", sum(len(s.plan.nodes) for s in specs))
                broker_ids = _ids(cur, "django_q_ormq", len(specs))  # each run's first step came by the broker
            pending.add(pool.submit(_chunk_write, specs, step_ids, broker_ids, random.Random(rng.random())))
            if len(pending) > threads:
                finished, pending = wait(pending, return_when=FIRST_COMPLETED)
                done(finished)
        done(wait(pending).done)
    seeded.copy_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    with connection.cursor() as cur:
        for table in TABLES:
            cur.execute(f"VACUUM (ANALYZE) {table}")  # noqa: S608 (names)
    seeded.analyze_s = time.perf_counter() - t0
    return seeded


def wide_run_id():
    """The newest run of the 1,000-step workflow, or None."""
    from engine.models import Run

    return Run.objects.filter(workflow__slug=WIDE_SLUG).order_by("-created_at").values_list("pk", flat=True).first()
