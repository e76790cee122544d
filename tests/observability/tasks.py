"""Functions for python nodes in observability tests (loaded by workers via WEFT_TASK_MODULES)."""

from __future__ import annotations

import logging
import os
import threading
import time

import psutil

import weft

log = logging.getLogger("obs.tests")


@weft.task(name="obs.fail_once")
def fail_once(ctx):
    """Fails its first attempt, succeeds on the next."""
    if ctx.attempt == 1:
        raise RuntimeError("first attempt fails")
    return {"attempt": ctx.attempt}


@weft.task(name="obs.hang_first_attempt")
def hang_first_attempt(ctx, seconds: float = 60):
    """The first attempt hangs (to be killed); later attempts return at once."""
    if ctx.attempt == 1:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            time.sleep(0.05)
    return {"attempt": ctx.attempt}


@weft.task(name="obs.talk")
def talk(ctx, words: list[str] | None = None):
    """Logs and prints each word, and reports through ``ctx.logger``."""
    for word in words or []:
        log.info("said %s", word)
        print(f"printed {word}")
    ctx.logger.warning("finished talking")
    return {"words": len(words or [])}


@weft.task(name="obs.flood")
def flood(ctx, big_lines: int = 20, big_bytes: int = 1_000_000, lines: int = 1_000_000):
    """Logs and prints ``big_lines`` lines of ``big_bytes`` characters, then prints ``lines`` short lines;
    reports this worker process's resident memory at the start and its peak, sampled every 10 ms."""
    process = psutil.Process()
    start = process.memory_info().rss
    peak = [start]
    done = threading.Event()

    def sample():
        while not done.wait(0.01):
            peak[0] = max(peak[0], process.memory_info().rss)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    big = "x" * big_bytes
    for _ in range(big_lines):
        log.warning(big)
    for _ in range(big_lines):
        print(big)
    for i in range(lines):
        print(f"line {i}")
    done.set()
    sampler.join()
    return {"rss_start": start, "rss_peak": max(peak[0], process.memory_info().rss)}


@weft.task(name="obs.journal_fail_once")
def journal_fail_once(ctx):
    """Two journaled calls; the second raises on the first attempt."""

    def second():
        if ctx.attempt == 1:
            raise RuntimeError("the second call fails once")
        return 2

    return {"values": [ctx.step("sub-0", lambda: 1, safe_to_repeat=True), ctx.step("sub-1", second,
                                                                                    safe_to_repeat=True)]}


@weft.task(name="obs.by_input")
def by_input(ctx):
    """Fails (ValueError) when the run input ``fail`` is true; fails its first attempt when ``flaky`` is."""
    if ctx.run_inputs.get("fail"):
        raise ValueError("asked to fail")
    if ctx.run_inputs.get("flaky") and ctx.attempt == 1:
        raise RuntimeError("flaky first attempt")
    return {"ok": True}


@weft.task(name="obs.wait_for_file")
def wait_for_file(ctx, path: str, timeout: float = 30):
    """Prints and logs a line, then waits until ``path`` exists."""
    print("started; waiting")
    log.warning("still waiting for %s", path)
    deadline = time.monotonic() + timeout
    while not os.path.exists(path) and time.monotonic() < deadline:
        time.sleep(0.05)
    print("released")
    return {"released": os.path.exists(path)}
