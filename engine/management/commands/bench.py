"""``manage.py bench WORKLOAD [--runs N] [--json]``: measure Weft on real workers (docs/benchmarks.md)."""

from __future__ import annotations

import json
import time

from django.core.management.base import BaseCommand, CommandError

from engine.operations import bench


class Command(BaseCommand):
    help = "Run a benchmark workload on warm workers this command starts; prints medians with min and max."

    def add_arguments(self, parser):
        parser.add_argument("workload", choices=[*bench.WORKLOADS, "all"])
        parser.add_argument("--runs", type=int, default=5, help="repetitions (default 5)")
        parser.add_argument("--json", action="store_true", dest="as_json", help="print one JSON object per workload")

    def handle(self, *args, workload, runs, as_json, **options):
        if runs < 1:
            raise CommandError("--runs must be at least 1", returncode=2)
        names = [w for w in bench.WORKLOADS if w != "floor"] if workload == "all" else [workload]
        floor = bench.floor_ms()
        bench.cancel_leftovers()
        bench.vacuum()
        with bench.BenchWorkers():
            time.sleep(3)  # clusters up
            bench.chain(5)  # warm: imports, connections, graph caches
            for name in names:
                samples = [bench.run_workload(name, analyze=i == 0) for i in range(runs)]
                floor = min(floor, bench.floor_ms()) if name == "floor" else floor
                self._report(name, runs, samples, floor, as_json)

    def _report(self, name, runs, samples, floor, as_json):
        per_step = bench.summary([s.per_step_ms for s in samples])
        per_s = bench.summary([s.steps_per_s for s in samples])
        extra_keys = sorted({k for s in samples for k in s.extra})
        extra = {k: bench.summary([s.extra.get(k) for s in samples]) for k in extra_keys}
        result = {"workload": name, "runs": runs, "per_step_ms": per_step, "steps_per_s": per_s,
                  "floor_ms": round(floor, 4),
                  "per_step_ratio_to_floor": round(per_step["median"] / floor, 2) if per_step else None,
                  **extra}
        if as_json:
            self.stdout.write(json.dumps(result))
            return
        self.stdout.write(f"{name}: {runs} run(s); commit floor {floor:.3f} ms")
        if per_step:
            self.stdout.write(f"  per step   median {per_step['median']:.2f} ms (min {per_step['min']:.2f}, "
                              f"max {per_step['max']:.2f}) = {result['per_step_ratio_to_floor']}x floor")
        if per_s:
            self.stdout.write(f"  steps/s    median {per_s['median']:.1f} (min {per_s['min']:.1f}, "
                              f"max {per_s['max']:.1f})")
        for key, s in extra.items():
            if s:
                self.stdout.write(f"  {key:<10} median {s['median']} (min {s['min']}, max {s['max']})")
