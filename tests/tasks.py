"""Functions registered for ``python`` nodes in tests (loaded via WEFT_TASK_MODULES=tests.tasks)."""

from __future__ import annotations

import json
import os
import time
import urllib.request

import weft


@weft.task(name="tests.noop")
def noop(ctx, **kwargs):
    return {"node": ctx.node_id, **kwargs}


@weft.task(name="tests.add")
def add(ctx, a: int = 0, b: int = 0):
    return {"sum": a + b}


@weft.task(name="tests.fail_until_flag")
def fail_until_flag(ctx, flag: str):
    """Raises until the file ``flag`` exists; counts its executions in ``flag + '.count'``."""
    with open(flag + ".count", "a") as f:
        f.write(f"{ctx.node_id}\n")
    if not os.path.exists(flag):
        raise RuntimeError(f"flag {flag} does not exist yet")
    return {"ok": True}


@weft.task(name="tests.fail_at")
def fail_at(ctx, item=None, fail: list | None = None):
    """An item of a map: raises for the items in ``fail``, else returns the item."""
    if item in (fail or []):
        raise RuntimeError(f"item {item}")
    return {"item": item}


@weft.task(name="tests.fail_until_flag_at")
def fail_until_flag_at(ctx, flag: str, item=None, fail: list | None = None):
    """An item of a map: raises for the items in ``fail`` until the file ``flag`` exists."""
    if item in (fail or []) and not os.path.exists(flag):
        raise RuntimeError(f"item {item}: flag {flag} does not exist yet")
    return {"item": item}


@weft.task(name="tests.count")
def count(ctx, path: str):
    """Appends this node's id to ``path``: how many times each step really executed."""
    with open(path, "a") as f:
        f.write(f"{ctx.node_id}\n")
    return {"node": ctx.node_id}


@weft.task(name="tests.note")
def note(ctx, path: str, value: str = ""):
    """Appends ``value`` to ``path``: the order steps really ran in."""
    with open(path, "a") as f:
        f.write(f"{value}\n")
    return {"value": value}


@weft.task(name="tests.sleep")
def sleep(ctx, seconds: float = 1.0, path: str = ""):
    if path:
        with open(path, "a") as f:
            f.write(f"{ctx.node_id} {time.time()}\n")
    time.sleep(seconds)
    return {"slept": seconds}


@weft.task(name="tests.raise")
def raise_error(ctx, message: str = "boom", kind: str = "RuntimeError"):
    raise {"RuntimeError": RuntimeError, "ValueError": ValueError, "KeyError": KeyError}[kind](message)


@weft.task(name="tests.http_effect")
def http_effect(ctx, url: str, calls: int = 1):
    """Makes ``calls`` journaled POSTs to ``url``, each with its idempotency key."""

    def post(i: int, idempotency_key: str):
        req = urllib.request.Request(url, data=json.dumps({"node": ctx.node_id, "i": i}).encode(), method="POST",
                                     headers={"Idempotency-Key": idempotency_key, "Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=10) as resp:
            return json.loads(resp.read())

    return {"results": [ctx.step(f"call-{i}", post, i) for i in range(calls)]}


@weft.task(name="tests.unsafe_call")
def unsafe_call(ctx, path: str, hang_flag: str = ""):
    """A journaled call that is not safe to repeat; hangs while ``hang_flag`` exists (to be killed mid-call)."""

    def effect():
        with open(path, "a") as f:
            f.write("effect\n")
        while hang_flag and os.path.exists(hang_flag):
            time.sleep(0.1)
        return "done"

    return {"result": ctx.step("charge", effect)}


@weft.task(name="tests.journal_steps")
def journal_steps(ctx, path: str, n: int = 3, fail_at: int = -1, flag: str = ""):
    """n journaled sub-steps that each append to ``path``; sub-step ``fail_at`` raises until ``flag`` exists."""

    def sub(i: int):
        with open(path, "a") as f:
            f.write(f"{i}\n")
        if i == fail_at and not os.path.exists(flag):
            raise RuntimeError(f"sub-step {i} failed")
        return i * 10

    return {"values": [ctx.step(f"sub-{i}", sub, i, safe_to_repeat=True) for i in range(n)]}


@weft.task(name="tests.changing_keys")
def changing_keys(ctx, path: str):
    """Uses a different journal key on each attempt: a non-deterministic node."""
    attempt = ctx.attempt
    ctx.step(f"key-{attempt}", lambda: attempt, safe_to_repeat=True)
    raise RuntimeError("fail so that the next attempt replays")


@weft.task(name="tests.chatty")
def chatty(ctx, lines: int = 3):
    for i in range(lines):
        print(f"printed {i}")
        ctx.logger.info("logged %d", i)
    return {"lines": lines}


@weft.task(name="tests.journal_loop")
def journal_loop(ctx, path: str, n: int = 50, pause: float = 0.2):
    """n journaled sub-steps of ``pause`` seconds each; each appends its number to ``path`` when it runs."""

    def sub(i: int):
        with open(path, "a") as f:
            f.write(f"{i}\n")
        time.sleep(pause)
        return i

    return {"done": [ctx.step(f"loop-{i}", sub, i, safe_to_repeat=True) for i in range(n)]}
