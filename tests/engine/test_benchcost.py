"""What a bench sample costs (engine/operations/benchcost.py): the worker tree's CPU across replaced processes."""

from __future__ import annotations

import subprocess
import sys

from engine.operations.benchcost import _tree_cpu_s

BURN = "import time\nwhile time.process_time() < 0.3:\n    pass\n"
# A parent that, once told, runs a child burning 0.3 s of CPU to its end, says so, and stays until its stdin
# closes: as a django-q2 cluster replaces a worker that reached its recycle count.
PARENT = ("import subprocess, sys\nsys.stdin.readline()\n"
          f"subprocess.run([sys.executable, '-c', {BURN!r}])\nprint('done', flush=True)\nsys.stdin.read()\n")


def test_worker_tree_cpu_counts_a_process_that_ended_between_two_readings():
    parent = subprocess.Popen([sys.executable, "-c", PARENT], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        before = _tree_cpu_s(parent.pid)
        parent.stdin.write("go\n")
        parent.stdin.flush()
        assert parent.stdout.readline() == "done\n"
        after = _tree_cpu_s(parent.pid)
    finally:
        parent.communicate("")
    assert after - before >= 0.3  # the child's whole burn, though it had ended and gone when the second was read
    assert _tree_cpu_s(parent.pid) is None
