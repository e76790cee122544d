"""The whole suite as `make test` runs it: two lanes at once.

Most of the suite's time is spent waiting: for worker processes, a browser, a server's answer. Two pytest
processes, each on a test database of its own, share the two cores. The chaos tests that restart PostgreSQL
restart a private server of their own (tests/chaos/test_postgres_restart.py), so no lane disturbs the other.
Each lane's output is printed when it ends, and the last line adds the lanes up. Arguments are passed to every
pytest (``--soak``, ``-x``...).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
FIRST = ["tests/e2e", "tests/api", "tests/nodes", "tests/triggers"]
LANES = {  # name: (pytest arguments, test database); about the same time each
    "browser, api and nodes": (FIRST, "test_weft_lane_a"),
    "engine, chaos and the rest": (["tests", *(f"--ignore={path}" for path in FIRST)], "test_weft_lane_b"),
}
COUNTS = re.compile(r"(\d+) (passed|failed|errors?|skipped|xfailed|xpassed|deselected)")


def _start(name: str, args: list[str], database: str, extra: list[str], logs: Path) -> tuple:
    log = open(logs / f"{name}.log", "w+")  # noqa: SIM115 -- read back when the lane ends
    env = {**os.environ, "WEFT_TEST_DB_NAME": database}
    proc = subprocess.Popen([sys.executable, "-m", "pytest", *args, *extra], cwd=REPO, env=env, stdout=log,
                            stderr=subprocess.STDOUT)
    return name, proc, log, time.monotonic()


def _finish(lane: tuple, totals: dict) -> int:
    name, proc, log, started = lane
    code = proc.wait()
    log.seek(0)
    text = log.read()
    log.close()
    print(f"\n===== lane: {name} (exit {code}, {time.monotonic() - started:.0f} s) =====", flush=True)
    print(text, flush=True)
    last = [line for line in text.splitlines() if COUNTS.search(line) and " in " in line]
    for number, what in COUNTS.findall(last[-1] if last else ""):
        what = "failed" if what.startswith("error") else what
        totals[what] = totals.get(what, 0) + int(number)
    return 0 if code in (0, 5) else code  # 5: every test of the lane deselected by the arguments


def main(extra: list[str]) -> int:
    started = time.monotonic()
    totals: dict[str, int] = {}
    with tempfile.TemporaryDirectory(prefix="weft-lanes-") as tmp:
        logs = Path(tmp)
        running = [_start(name, args, db, extra, logs) for name, (args, db) in LANES.items()]
        print(f"lanes started: {'; '.join(LANES)}", flush=True)
        codes = [_finish(lane, totals) for lane in running]
    rest = ", ".join(f"{totals[k]} {k}" for k in ("xfailed", "xpassed", "deselected") if totals.get(k))
    print(f"\nlanes took {time.monotonic() - started:.0f} s" + (f"; also {rest}" if rest else ""))
    print(f"total: {totals.get('passed', 0)} passed, {totals.get('failed', 0)} failed, "
          f"{totals.get('skipped', 0)} skipped")
    return next((c for c in codes if c), 0)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
