"""Retention: deleting finished runs, and everything that belongs to them, once they are old enough.

``prune`` deletes in batches (sql/retention.sql ``prune_batch``), each its own short transaction that waits at
most 100 ms for a lock, sized so that a batch takes about ``TARGET_BATCH_S``: the tables it deletes from are the
hot path's, and a prune must never make a running workflow wait. It never touches a run that is not finished,
nor a run whose child run is still going. The recovery loop applies ``WEFT_RETENTION_DAYS`` once a day, a batch a
pass (engine.worker.recovery); ``manage.py prune`` applies any age at once.
"""

from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass, fields
from datetime import timedelta

from django.conf import settings
from django.db import OperationalError, connection, transaction
from django.utils import timezone

from engine import statements
from engine.exceptions import NotFound
from engine.models import Workflow
from engine.states import RUN_TERMINAL, RunStatus

log = logging.getLogger(__name__)

_SQL = statements.load(__file__, "sql/retention.sql")
SQL = {name: statements.compose(_SQL[name], prunable_runs=_SQL["prunable_runs"])
       for name in ("prunable", "prune_batch", "prunable_any")} | {"prune_lock_timeout": _SQL["prune_lock_timeout"]}

RUN_UNFINISHED = sorted(set(RunStatus.values) - RUN_TERMINAL)
TARGET_BATCH_S = 0.05
MIN_BATCH, MAX_BATCH, FIRST_BATCH = 10, 2000, 100
_AGE = re.compile(r"^\s*(?P<n>\d+)\s*(?P<unit>[dhms]?)\s*$")
_UNITS = {"d": "days", "": "days", "h": "hours", "m": "minutes", "s": "seconds"}


@dataclass
class Pruned:
    """What a prune deleted (or, dry, would delete)."""

    runs: int = 0
    steps: int = 0
    attempts: int = 0
    events: int = 0
    journal_entries: int = 0

    def add(self, counts) -> None:
        for field, count in zip(fields(self), counts, strict=True):
            setattr(self, field.name, getattr(self, field.name) + count)

    def as_dict(self) -> dict:
        return {field.name: getattr(self, field.name) for field in fields(self)}


def parse_age(text: str) -> timedelta:
    """``30d``, ``12h``, ``90m``, ``3600s`` or a plain number of days. Raises ValueError naming the format."""
    match = _AGE.match(str(text))
    if match is None:
        raise ValueError(f"{text!r} is not an age: use a whole number with d, h, m or s (30d, 12h, 90m, 3600s)")
    return timedelta(**{_UNITS[match["unit"]]: int(match["n"])})


def _scope(older_than: timedelta, workflow: str | None) -> dict:
    """The parameters of prunable_runs: which runs a prune deletes."""
    workflow_id = None
    if workflow:
        workflow_id = Workflow.objects.filter(slug=workflow).values_list("pk", flat=True).first()
        if workflow_id is None:
            raise NotFound(f"workflow {workflow!r} does not exist")
    return {"cutoff": timezone.now() - older_than, "workflow": workflow_id, "run_terminal": sorted(RUN_TERMINAL),
            "run_unfinished": RUN_UNFINISHED}


def _group_prefix() -> str:
    """What the channel layer's membership keys of a run's group start with (the run's id follows)."""
    from channels.layers import get_channel_layer

    from engine.core.events import postgres_group_key, run_group

    layer = get_channel_layer()
    prefix = getattr(layer, "prefix", None)
    # Any other layer keeps no rows here: a prefix no key has matches nothing.
    return postgres_group_key(prefix=prefix, group=run_group("")) if prefix is not None else "\x01"


def prunable(*, older_than: timedelta, workflow: str | None = None) -> Pruned:
    """What ``prune`` would delete now."""
    with connection.cursor() as cur:
        statements.execute(cur, SQL["prunable"], _scope(older_than, workflow))
        found = Pruned()
        found.add(cur.fetchone())
        return found


def prune_batch(scope: dict, *, size: int, group_prefix: str) -> Pruned:
    """One batch: up to ``size`` of the oldest prunable runs, in one transaction. A batch that would wait more than
    100 ms for a lock deletes nothing (and says so by returning nothing deleted with ``locked`` logged)."""
    done = Pruned()
    try:
        with transaction.atomic(), connection.cursor() as cur:
            statements.execute(cur, SQL["prune_lock_timeout"], {})
            statements.execute(cur, SQL["prune_batch"], {**scope, "batch": size, "group_prefix": group_prefix})
            done.add(cur.fetchone())
    except OperationalError as exc:
        if getattr(getattr(exc, "__cause__", None), "sqlstate", None) != "55P03":  # lock_not_available
            raise
        log.info("prune: a batch waited over 100 ms for a lock; trying again")
    return done


class Pruner:
    """Prunes in batches sized to take about TARGET_BATCH_S each; ``step`` runs one batch, and decides whether
    anything is left."""

    def __init__(self, *, older_than: timedelta, workflow: str | None = None):
        self.scope = _scope(older_than, workflow)
        self.size = FIRST_BATCH
        self.total = Pruned()
        self.group_prefix = _group_prefix()
        self.blocked = 0  # batches in a row that deleted nothing while runs were left: they met a lock

    def step(self) -> int | None:
        """One batch; returns the runs it deleted (0 after a lock wait), or None: nothing is left."""
        started = time.monotonic()
        done = prune_batch(self.scope, size=self.size, group_prefix=self.group_prefix)
        took = time.monotonic() - started
        self.total.add(done.as_dict().values())
        if done.runs == self.size and took < TARGET_BATCH_S / 2:
            self.size = min(self.size * 2, MAX_BATCH)
        elif took > TARGET_BATCH_S:
            self.size = max(int(self.size * TARGET_BATCH_S / took), MIN_BATCH)
        if done.runs:
            self.blocked = 0
            return done.runs
        with connection.cursor() as cur:  # nothing deleted: nothing left, or the rows it wanted were locked
            statements.execute(cur, SQL["prunable_any"], self.scope)
            if not cur.fetchone()[0]:
                return None
        self.blocked += 1
        return 0


def prune(*, older_than: timedelta, workflow: str | None = None, pause_s: float = 0.0) -> Pruned:
    """Delete every finished run older than ``older_than`` (finished before now minus it) and what belongs to it,
    batch by batch. Returns the counts deleted."""
    pruner = Pruner(older_than=older_than, workflow=workflow)
    while (deleted := pruner.step()) is not None:
        if not deleted:
            time.sleep(min(0.1 * pruner.blocked, 1.0))
        if pause_s:
            time.sleep(pause_s)
    return pruner.total


class DailyRetention:
    """WEFT_RETENTION_DAYS applied by the recovery loop: when its leader starts and then once a day, one batch a
    recovery pass until nothing is left, so a large backlog never holds up the loop's own work."""

    GIVE_UP_AFTER = 10  # batches in a row that met a lock: the rest waits for the next day

    def __init__(self, *, clock=time.monotonic):
        self.clock = clock
        self.next_at = clock()
        self.pruner: Pruner | None = None

    def step(self) -> int:
        """One batch if a prune is due or under way; returns the runs deleted."""
        days = settings.WEFT_RETENTION_DAYS
        if not days:
            return 0
        if self.pruner is None:
            if self.clock() < self.next_at:
                return 0
            self.pruner = Pruner(older_than=timedelta(days=days))
        deleted = self.pruner.step()
        if deleted is not None and self.pruner.blocked <= self.GIVE_UP_AFTER:
            return deleted
        total = self.pruner.total
        if total.runs:
            log.info("retention: deleted %d finished runs older than %d days (%d steps, %d events)",
                     total.runs, days, total.steps, total.events)
        self.pruner, self.next_at = None, self.clock() + 86400
        return 0
