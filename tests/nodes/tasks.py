"""Functions registered for node tests (workers load them through WEFT_TASK_MODULES)."""

from __future__ import annotations

import json
import os

import weft


class SimulatedCrash(BaseException):
    """Stands in for the process dying: not an Exception, so nothing records an outcome."""


@weft.task(name="nodes_tests.read_json")
def read_json(ctx, path: str):
    with open(path) as f:
        return json.load(f)


@weft.task(name="nodes_tests.typed")
def typed(ctx, n: int, names: list[str], label: str = "x", ratio: float | None = None):
    return {"n": n, "names": names, "label": label, "ratio": ratio}


@weft.task(name="nodes_tests.weather", safe_to_repeat=True)
def weather(ctx, city: str) -> dict:
    """Current temperature in a city."""
    return {"city": city, "celsius": len(city) + 10}


@weft.task(name="nodes_tests.charge_once", safe_to_repeat=False)
def charge_once(ctx, i: int = 0, flag: str = "", log: str = "") -> dict:
    """An effect that is not safe to repeat; the first call 'crashes' mid-way while ``flag`` does not exist."""
    with open(log, "a") as f:
        f.write(f"{i}\n")
    if flag and not os.path.exists(flag):
        open(flag, "w").close()
        raise SimulatedCrash("the worker died mid-call")
    return {"charged": i}


@weft.task(name="nodes_tests.page", safe_to_repeat=True)
def page(ctx, i: int = 0, size: int = 2000, crash_at: int = -1, flag: str = "") -> dict:
    """A long page of text; call ``crash_at`` 'crashes' mid-way the first time (while ``flag`` does not exist)."""
    if i == crash_at and flag and not os.path.exists(flag):
        open(flag, "w").close()
        raise SimulatedCrash("the worker died mid-call")
    return {"i": i, "text": f"page {i} " * (size // 7)}
