"""The whole suite as `make test` runs it: two lanes at once, then the chaos tests alone.

Most of the suite's time is spent waiting: for worker processes, a browser, a server's answer. Two pytest
processes, each on a test database of its own, share the two cores; the chaos tests restart PostgreSQL and
kill processes, so they run afterwards with nothing beside them. Each lane's output is printed when it ends,
and the last line adds the lanes up. Arguments are passed to every pytest (``--soak``, ``-x``...).
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
LANES = {  # name: (pytest arguments, test database)
    "browser and api": (["tests/e2e", "tests/api"], "test_weft_lane_a"),
    "engine": (["tests", "--ignore=tests/e2e", "--ignore=tests/api", "--ignore=tests/chaos"], "test_weft_lane_b"),
}
ALONE = ("chaos", (["tests/chaos"], "test_weft_chaos"))
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
        print(f"lanes started: {', '.join(LANES)}; then {ALONE[0]} alone", flush=True)
        codes = [_finish(lane, totals) for lane in running]
        name, (args, db) = ALONE
        codes.append(_finish(_start(name, args, db, extra, logs), totals))
    rest = ", ".join(f"{totals[k]} {k}" for k in ("xfailed", "xpassed", "deselected") if totals.get(k))
    print(f"\nlanes took {time.monotonic() - started:.0f} s" + (f"; also {rest}" if rest else ""))
    print(f"total: {totals.get('passed', 0)} passed, {totals.get('failed', 0)} failed, "
          f"{totals.get('skipped', 0)} skipped")
    return next((c for c in codes if c), 0)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
