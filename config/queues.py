"""Named queues -> django-q2 cluster settings, with the checks that keep delivery sane.

Each queue becomes one django-q2 cluster selected by the ``Q_CLUSTER_NAME``
environment variable. django-q2's ORM broker redelivers a task once ``retry``
seconds have passed since it was *prefetched*, so ``retry`` must exceed
``timeout * (1 + ceil((queue_limit + 1) / workers))`` or a slow task runs twice.
"""

from __future__ import annotations

import json
import math

from config.errors import ConfigError

DEFAULT_QUEUES: dict[str, dict] = {
    "default": {"workers": 2, "timeout": 3600, "poll": 0.2},
    "fast": {"workers": 2, "timeout": 300, "poll": 0.2},
    "slow": {"workers": 2, "timeout": 6 * 3600, "poll": 0.5},
}

QUEUE_KEYS = {"workers", "timeout", "poll", "queue_limit", "retry", "max_attempts", "durability", "recycle"}
# django-q2 replaces a worker process after this many tasks (its own default).
DEFAULT_RECYCLE = 500
# A queue's default durability for workflows that name none (engine.core.durability; docs/reliability.md).
DURABILITIES = ("strict", "relaxed")


def min_retry(*, timeout: int, queue_limit: int, workers: int) -> int:
    return timeout * (1 + math.ceil((queue_limit + 1) / workers))


def parse_queues(raw: str | None) -> dict[str, dict]:
    """Parse ``WEFT_QUEUES`` (JSON object) into complete, checked queue settings."""
    if raw:
        try:
            given = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise ConfigError("WEFT_QUEUES", f"not valid JSON ({exc.msg} at position {exc.pos})") from None
        if not isinstance(given, dict) or not given:
            raise ConfigError("WEFT_QUEUES", "must be a non-empty JSON object of queue name -> settings")
    else:
        given = DEFAULT_QUEUES
    if "default" not in given:
        raise ConfigError("WEFT_QUEUES", "must declare a queue named 'default'")
    queues = {}
    for name, cfg in given.items():
        queues[name] = _check_queue(name, cfg)
    return queues


def _check_queue(name: str, cfg: object) -> dict:
    where = f"WEFT_QUEUES[{name!r}]"
    if not name.replace("_", "").replace("-", "").isalnum():
        raise ConfigError(where, "queue names use letters, digits, '-' and '_' only")
    if not isinstance(cfg, dict):
        raise ConfigError(where, "must be an object with workers, timeout and poll")
    unknown = set(cfg) - QUEUE_KEYS
    if unknown:
        raise ConfigError(where, f"unknown keys {sorted(unknown)}; allowed: {sorted(QUEUE_KEYS)}")
    out = dict(DEFAULT_QUEUES.get(name, DEFAULT_QUEUES["default"]))
    out.update(cfg)
    for key in ("workers", "timeout"):
        if not isinstance(out[key], int) or isinstance(out[key], bool) or out[key] < 1:
            raise ConfigError(f"{where}.{key}", f"must be a positive integer, got {out[key]!r}")
    if not isinstance(out["poll"], (int, float)) or not 0.01 <= out["poll"] <= 60:
        raise ConfigError(f"{where}.poll", f"must be seconds between 0.01 and 60, got {out['poll']!r}")
    out.setdefault("recycle", DEFAULT_RECYCLE)
    if not isinstance(out["recycle"], int) or isinstance(out["recycle"], bool) or out["recycle"] < 1:
        raise ConfigError(f"{where}.recycle", f"must be a positive integer, got {out['recycle']!r}")
    out.setdefault("durability", "strict")
    if out["durability"] not in DURABILITIES:
        raise ConfigError(f"{where}.durability", f"must be one of {', '.join(DURABILITIES)}, got {out['durability']!r}")
    out.setdefault("queue_limit", out["workers"])
    floor = min_retry(timeout=out["timeout"], queue_limit=out["queue_limit"], workers=out["workers"])
    out.setdefault("retry", floor + 60)
    if out["retry"] <= floor:
        raise ConfigError(
            f"{where}.retry",
            f"{out['retry']} s is not above timeout x (1 + ceil((queue_limit + 1) / workers)) = {floor} s; "
            "django-q2 would deliver the same task twice",
        )
    return out


def q_cluster_settings(queues: dict[str, dict], *, orm_alias: str = "default", log_level: str = "WARNING") -> dict:
    """django-q2's Q_CLUSTER: the 'default' queue is the main cluster, the others ALT_CLUSTERS."""

    def one(cfg: dict) -> dict:
        return {
            "workers": cfg["workers"],
            "timeout": cfg["timeout"],
            "retry": cfg["retry"],
            "poll": cfg["poll"],
            "queue_limit": cfg["queue_limit"],
            "max_attempts": cfg.get("max_attempts", 0),
            "recycle": cfg.get("recycle", DEFAULT_RECYCLE),
        }

    main = one(queues["default"])
    main.update(
        {
            "name": "default",
            "orm": orm_alias,
            "broker_class": "engine.core.broker.WeftBroker",
            "save_limit": -1,  # Weft keeps its own attempts; don't store successes twice
            "ack_failures": True,
            "catch_up": False,
            "label": "Weft queues",
            "log_level": log_level,
            "ALT_CLUSTERS": {n: one(c) for n, c in queues.items() if n != "default"},
        }
    )
    return main
