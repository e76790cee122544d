"""Run and step statuses, and the one table of allowed transitions."""

from __future__ import annotations

from django.db import models


class RunStatus(models.TextChoices):
    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


class StepStatus(models.TextChoices):
    PENDING = "pending"
    QUEUED = "queued"
    RUNNING = "running"
    WAITING = "waiting"  # approval, durable sleep, sub-workflow, or in doubt
    RETRY_WAIT = "retry_wait"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    SKIPPED = "skipped"
    UPSTREAM_FAILED = "upstream_failed"
    CANCELLED = "cancelled"


class Durability(models.TextChoices):
    """How a run's worker transactions commit (docs/reliability.md, "Durability"): ``strict`` waits for the WAL
    on disk, ``relaxed`` (synchronous_commit off) does not. Decided at the run's start, kept for its life."""

    STRICT = "strict"
    RELAXED = "relaxed"


# How a run started (Run.trigger["kind"]).
TRIGGER_KINDS = ("manual", "api", "schedule", "webhook", "event", "subworkflow")

R, S = RunStatus, StepStatus

RUN_TERMINAL = frozenset({R.SUCCEEDED, R.FAILED, R.CANCELLED})
STEP_TERMINAL = frozenset({S.SUCCEEDED, S.FAILED, S.SKIPPED, S.UPSTREAM_FAILED, S.CANCELLED})
STEP_ACTIVE = frozenset({S.QUEUED, S.RUNNING, S.WAITING, S.RETRY_WAIT})
STEP_FAILED = frozenset({S.FAILED, S.UPSTREAM_FAILED})
# Unfinished and held by no worker: what a run's cancellation cancels, and (with the failed ones) what an operator
# may settle by hand (skip, or complete).
STEP_IDLE = frozenset({S.PENDING, S.QUEUED, S.WAITING, S.RETRY_WAIT})
STEP_SETTLEABLE = STEP_IDLE | STEP_FAILED
# Finished runs that a step's retry, rerun, skip or completion starts again (a cancelled run stays cancelled).
RUN_REOPENABLE = RUN_TERMINAL - {R.CANCELLED}

# status -> statuses it may move to. Every change goes through engine.core.transitions, which refuses anything
# not listed here (its named transitions are checked against these tables when it is imported).
RUN_NEXT: dict[str, frozenset[str]] = {
    R.PENDING: frozenset({R.RUNNING, R.FAILED, R.CANCELLED}),
    R.RUNNING: frozenset({R.SUCCEEDED, R.FAILED, R.CANCELLED}),
    R.SUCCEEDED: frozenset({R.RUNNING}),  # rerun from a step
    # retry / rerun / skip / complete a step; completing or skipping its last failed step (a map's item) reopens
    # and finishes it in one transaction, one write of its row: failed -> succeeded
    R.FAILED: frozenset({R.RUNNING, R.SUCCEEDED}),
    R.CANCELLED: frozenset(),
}

STEP_NEXT: dict[str, frozenset[str]] = {
    S.PENDING: frozenset({S.QUEUED, S.RUNNING, S.SUCCEEDED, S.WAITING, S.SKIPPED, S.UPSTREAM_FAILED, S.FAILED,
                          S.CANCELLED}),
    S.QUEUED: frozenset({S.RUNNING, S.SUCCEEDED, S.SKIPPED, S.FAILED, S.CANCELLED}),
    S.RUNNING: frozenset({S.SUCCEEDED, S.FAILED, S.RETRY_WAIT, S.WAITING, S.QUEUED, S.CANCELLED}),
    S.WAITING: frozenset({S.QUEUED, S.SUCCEEDED, S.FAILED, S.SKIPPED, S.CANCELLED}),
    S.RETRY_WAIT: frozenset({S.QUEUED, S.SUCCEEDED, S.FAILED, S.SKIPPED, S.CANCELLED}),
    S.SUCCEEDED: frozenset({S.QUEUED, S.PENDING}),  # rerun from here / below
    S.FAILED: frozenset({S.QUEUED, S.PENDING, S.SUCCEEDED, S.SKIPPED}),
    S.SKIPPED: frozenset({S.QUEUED, S.PENDING}),
    S.UPSTREAM_FAILED: frozenset({S.PENDING, S.SUCCEEDED, S.SKIPPED}),
    S.CANCELLED: frozenset({S.PENDING}),
}


def _invert(table: dict[str, frozenset[str]]) -> dict[str, frozenset[str]]:
    sources: dict[str, set[str]] = {status: set() for status in table}
    for source, targets in table.items():
        for target in targets:
            sources[target].add(source)
    return {target: frozenset(s) for target, s in sources.items()}


RUN_TRANSITIONS = _invert(RUN_NEXT)  # target -> statuses it may be entered from
STEP_TRANSITIONS = _invert(STEP_NEXT)
