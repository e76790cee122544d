"""Named limits: create, read, change and delete them, and check the limits a workflow's nodes name.

What a limit does to steps is engine.core.limits; this is what the API and pages call.
"""

from __future__ import annotations

import re

from django.db import IntegrityError, connection, transaction

from engine.core import limits as core
from engine.exceptions import AlreadyExists, EngineError, InvalidTransition, Issue, NotFound
from engine.models import Limit
from engine.statements import execute

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
MAX_PERIOD_S = 86400.0 * 366


class LimitInvalid(EngineError):
    code = "limit_invalid"


def _refuse(path: str, message: str):
    raise LimitInvalid(f"{path}: {message}", details=[{"path": path, "message": message}])


def _check(*, name: str, concurrency, rate) -> dict:
    """The model's fields for ``concurrency`` and ``rate`` ({limit, period_s, burst}), or LimitInvalid naming the
    field."""
    if not isinstance(name, str) or not NAME.match(name):
        _refuse("name", "a name is 1-100 letters, digits, '_', '.' or '-', starting with a letter or digit")
    if concurrency is not None and (type(concurrency) is not int or concurrency < 1):
        _refuse("concurrency", "must be a whole number of at least 1 (or null: no concurrency limit)")
    fields = {"concurrency": concurrency, "rate_limit": None, "rate_period_s": None, "rate_burst": 0}
    if rate is not None:
        if not isinstance(rate, dict):
            _refuse("rate", "must be an object {limit, period_s, burst} (or null: no rate)")
        limit, period, burst = rate.get("limit"), rate.get("period_s"), rate.get("burst", 0)
        if type(limit) is not int or limit < 1:
            _refuse("rate.limit", "must be a whole number of at least 1")
        if type(period) not in (int, float) or not 0 < period <= MAX_PERIOD_S:
            _refuse("rate.period_s", f"must be a number of seconds above 0 and at most {MAX_PERIOD_S:.0f}")
        if type(burst) is not int or burst < 0:
            _refuse("rate.burst", "must be a whole number of at least 0")
        fields.update(rate_limit=limit, rate_period_s=float(period), rate_burst=burst)
    if concurrency is None and rate is None:
        _refuse("concurrency", "a limit needs a concurrency, a rate, or both")
    return fields


def describe(lim: Limit, buckets: list[dict] | None = None) -> dict:
    rate = ({"limit": lim.rate_limit, "period_s": lim.rate_period_s, "burst": lim.rate_burst}
            if lim.rate_limit else None)
    return {"name": lim.name, "concurrency": lim.concurrency, "rate": rate, "created_at": lim.created_at,
            "updated_at": lim.updated_at, "buckets": buckets or []}


def limit_create(*, name: str, concurrency=None, rate=None) -> dict:
    fields = _check(name=name, concurrency=concurrency, rate=rate)
    try:
        with transaction.atomic():
            lim = Limit.objects.create(name=name, **fields)
    except IntegrityError:
        raise AlreadyExists(f"a limit named {name!r} already exists") from None
    return describe(lim)


def _get(name: str) -> Limit:
    lim = Limit.objects.filter(name=name).first()
    if lim is None:
        raise NotFound(f"limit {name!r} does not exist")
    return lim


def limit_get(name: str) -> dict:
    lim = _get(name)
    return describe(lim, core.limits_status([lim.name])[lim.name])


def limit_list() -> list[dict]:
    lims = list(Limit.objects.order_by("name"))
    status = core.limits_status([lim.name for lim in lims])
    return [describe(lim, status[lim.name]) for lim in lims]


def limit_update(*, name: str, changes: dict) -> dict:
    """Replace the fields given in ``changes`` (``concurrency``, ``rate``; null removes one) and keep the others.
    Steps already waiting are admitted under the new values."""
    with transaction.atomic():
        lim = Limit.objects.select_for_update().filter(name=name).first()
        if lim is None:
            raise NotFound(f"limit {name!r} does not exist")
        current = describe(lim)
        merged = {k: changes.get(k, current[k]) for k in ("concurrency", "rate")}
        fields = _check(name=name, **merged)
        for key, value in fields.items():
            setattr(lim, key, value)
        lim.save()
        core.limits_admit()
    return limit_get(name)


def limit_delete(*, name: str) -> None:
    """Delete a limit no step waits for or holds (409 otherwise: those steps would lose their place)."""
    with transaction.atomic():
        lim = Limit.objects.select_for_update().filter(name=name).first()
        if lim is None:
            raise NotFound(f"limit {name!r} does not exist")
        with connection.cursor() as cur:
            execute(cur, core.SQL["limit_busy"], {"name": name, "holding": core.HOLDING})
            busy = cur.fetchone()[0]
        if busy:
            raise InvalidTransition(f"limit {name!r} is in use: steps wait for it or hold it; delete it when "
                                    "they are done")
        lim.delete()


def limits_issues(graph) -> list[Issue]:
    """The nodes' limits that name no existing limit, and key templates that do not parse."""
    from engine.templating import templates as templating

    wanted = {name for node in graph.nodes.values() for name, _ in node.limits}
    if not wanted:
        return []
    known = set(Limit.objects.filter(name__in=wanted).values_list("name", flat=True))
    issues = []
    for node in graph.nodes.values():
        for i, (name, key) in enumerate(node.limits):
            path = f"nodes[{node.index}].limits[{i}]"
            if name not in known:
                issues.append(Issue("unknown_limit", f"node `{node.id}`: limit `{name}` does not exist; create it "
                                                     "on the Limits page first",
                                    node=node.id, path=f"{path}.name"))
            problem = templating.check_syntax(key) if key else None
            if problem:
                issues.append(Issue("limit_key_invalid", f"node `{node.id}`: the key of limit `{name}`: {problem}",
                                    node=node.id, path=f"{path}.key"))
    return issues
