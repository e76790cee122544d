"""``manage.py bench WORKLOAD [--runs N] [--durability strict|relaxed|both] [--json]``: measure Weft on real workers
(docs/benchmarks.md). ``bench seed --runs N`` fills the database with a year of history instead, ``bench api``
times the API and pages on it, and ``bench ui`` measures the run view in Chromium; none starts workers."""

from __future__ import annotations

import json
import time

from django.core.management.base import BaseCommand, CommandError

from engine.operations import bench
from engine.operations.apibench import api_measure
from engine.operations.benchcost import cost_prepare
from engine.operations.seed import history_seed
from engine.operations.uibench import summary as ui_summary
from engine.operations.uibench import ui_measure

# Workloads on the database alone: no workers, no commit floor, not in `all`.
DATABASE_WORKLOADS = ("seed", "api", "ui")
# What a step costs, measured around the samples of the workloads with a per-step time (bench.Sample).
COSTS = ("commits_per_step", "wal_bytes_per_step", "workers_cpu_ms_per_step", "postgres_cpu_ms_per_step",
         "bench_cpu_ms_per_step")


def _cost_line(costs: dict) -> str:
    """The medians: `1.02 commits/step, 1,840 WAL bytes/step; CPU/step: workers 0.61 ms, postgres 0.48 ms, ...`."""
    def median(key: str, fmt: str) -> str:
        return "n/a" if costs[key] is None else format(costs[key]["median"], fmt)

    cpu = [f"{kind} {median(f'{kind}_cpu_ms_per_step', '.2f')} ms" for kind in ("workers", "postgres", "bench")]
    return (f"{median('commits_per_step', '.2f')} commits/step, {median('wal_bytes_per_step', ',.0f')} WAL "
            f"bytes/step; CPU/step: {', '.join(cpu)}")


class Command(BaseCommand):
    help = "Run a benchmark workload on warm workers this command starts; prints medians with min and max."

    def add_arguments(self, parser):
        parser.add_argument("workload", choices=[*bench.WORKLOADS, *DATABASE_WORKLOADS, "all"])
        parser.add_argument("--runs", type=int, default=None,
                            help="repetitions (default 5); seed: the runs to write (default 10,000); api: the requests "
                                 "timed per endpoint (default 200)")
        parser.add_argument("--rate", type=float, default=100,
                            help="ui: the events a second sent to the open run view (default 100)")
        parser.add_argument("--json", action="store_true", dest="as_json", help="print one JSON object per workload")
        parser.add_argument("--durability", choices=["strict", "relaxed", "both"], default="strict",
                            help="the durability of the workflows measured (docs/reliability.md); both: strict and "
                                 "relaxed samples in turn, each reported, and relaxed's per-step time over strict's")

    def handle(self, *args, workload, runs, as_json, durability, rate, **options):
        if runs is not None and runs < 1:
            raise CommandError("--runs must be at least 1", returncode=2)
        if workload == "seed":
            return self._seed(runs or 10_000, as_json)
        if workload == "api":
            return self._api(runs or 200, as_json)
        if workload == "ui":
            return self._ui(runs or 5, rate, as_json)
        runs = runs or 5
        names = [w for w in bench.WORKLOADS if w != "floor"] if workload == "all" else [workload]
        modes = ["strict", "relaxed"] if durability == "both" else [durability]
        floor = bench.floor_ms()
        bench.cancel_leftovers()
        bench.vacuum()
        if unmeasured := cost_prepare():
            self.stderr.write(f"commits and WAL bytes per step will not be measured: {unmeasured}")
        with bench.BenchWorkers() as workers:
            time.sleep(3)  # clusters up
            bench.warm(modes)  # imports, connections, graph caches
            bench.grow()  # plans made for tables of some size, not a new database's empty ones
            for name in names:
                samples: dict[str, list] = {mode: [] for mode in modes}
                for i in range(runs):  # in turn, so that both see the same machine
                    for mode in modes:
                        samples[mode].append(bench.run_workload(name, analyze=i == 0 and mode == modes[0],
                                                                durability=mode, workers_pid=workers.proc.pid))
                floor = min(floor, bench.floor_ms()) if name == "floor" else floor
                for mode in modes:
                    self._report(name, runs, samples[mode], floor, as_json, durability=mode,
                                 strict=samples["strict"] if mode != "strict" and "strict" in samples else None)

    def _report(self, name, runs, samples, floor, as_json, *, durability: str, strict: list | None):
        per_step = bench.summary([s.per_step_ms for s in samples])
        per_s = bench.summary([s.steps_per_s for s in samples])
        extra_keys = sorted({k for s in samples for k in s.extra})
        extra = {k: bench.summary([s.extra.get(k) for s in samples]) for k in extra_keys}
        result = {"workload": name, "durability": durability, "runs": runs, "per_step_ms": per_step,
                  "steps_per_s": per_s, "floor_ms": round(floor, 4),
                  "per_step_ratio_to_floor": round(per_step["median"] / floor, 2) if per_step else None,
                  **extra}
        costs = {key: bench.summary([getattr(s, key) for s in samples]) for key in COSTS}
        if any(costs.values()):
            result.update(costs)
        strict_step = bench.summary([s.per_step_ms for s in strict]) if strict else None
        if per_step and strict_step:  # medians of the samples taken in turn in this invocation
            result["per_step_ratio_to_strict"] = round(per_step["median"] / strict_step["median"], 3)
        if as_json:
            self.stdout.write(json.dumps(result))
            return
        label = name if durability == "strict" else f"{name} ({durability})"
        self.stdout.write(f"{label}: {runs} run(s); commit floor {floor:.3f} ms")
        if per_step:
            self.stdout.write(f"  per step   median {per_step['median']:.2f} ms (min {per_step['min']:.2f}, "
                              f"max {per_step['max']:.2f}) = {result['per_step_ratio_to_floor']}x floor")
        if per_s:
            self.stdout.write(f"  steps/s    median {per_s['median']:.1f} (min {per_s['min']:.1f}, "
                              f"max {per_s['max']:.1f})")
        if any(costs.values()):
            self.stdout.write(f"  cost       {_cost_line(costs)}")
        for key, s in extra.items():
            if s:
                self.stdout.write(f"  {key:<10} median {s['median']} (min {s['min']}, max {s['max']})")
        if "per_step_ratio_to_strict" in result:
            self.stdout.write(f"  per step   {result['per_step_ratio_to_strict']}x strict's median "
                              f"({per_step['median']:.2f} against {strict_step['median']:.2f} ms)")

    def _seed(self, runs: int, as_json: bool) -> None:
        def progress(seeded):
            if not as_json and seeded.runs % 10_000 < 1_000:
                self.stderr.write(f"  {seeded.runs:,} runs, {seeded.total_rows:,} rows")

        seeded = history_seed(runs=runs, progress=progress)
        result = {"workload": "seed", "runs": seeded.runs, "rows": seeded.rows, "total_rows": seeded.total_rows,
                  "copy_s": round(seeded.copy_s, 1), "rows_per_s": round(seeded.total_rows / seeded.copy_s),
                  "vacuum_analyze_s": round(seeded.analyze_s, 1)}
        if as_json:
            self.stdout.write(json.dumps(result))
            return
        self.stdout.write(f"seed: {seeded.runs:,} runs, {seeded.total_rows:,} rows in {seeded.copy_s:.1f} s: "
                          f"{result['rows_per_s']:,} rows/s; then VACUUM (ANALYZE) {seeded.analyze_s:.1f} s")
        for table, n in seeded.rows.items():
            self.stdout.write(f"  {table:<20} {n:>12,}")

    def _api(self, requests: int, as_json: bool) -> None:
        for t in api_measure(requests=requests):
            result = {"workload": "api", "endpoint": t.endpoint.name, "path": t.endpoint.path, "requests": requests,
                      "p50_ms": t.p50_ms, "p95_ms": t.p95_ms, "max_ms": t.max_ms, "target_p95_ms": t.endpoint.target_ms,
                      "met": t.met, "queries": t.queries, "cpu_p50_ms": t.cpu_p50_ms}
            if as_json:
                self.stdout.write(json.dumps(result))
                continue
            self.stdout.write(f"{t.endpoint.name:<36} p50 {t.p50_ms:>8.1f} ms  p95 {t.p95_ms:>8.1f} ms  "
                              f"(target < {t.endpoint.target_ms:g} ms: {'met' if t.met else 'NOT met'})  "
                              f"{t.queries} queries, CPU p50 {t.cpu_p50_ms:.1f} ms")

    def _ui(self, runs: int, rate: float, as_json: bool) -> None:
        try:
            samples = ui_measure(repetitions=runs, rate=rate)
        except RuntimeError as exc:
            raise CommandError(str(exc)) from exc
        result = {"workload": "ui", "runs": runs, "rate": rate, **ui_summary(samples)}
        if as_json:
            self.stdout.write(json.dumps(result))
            return
        self.stdout.write(f"ui: the run view of a 1,000-step run in Chromium, {runs} run(s); {rate:g} events/s sent")
        for key, s in result.items():
            if isinstance(s, dict):
                self.stdout.write(f"  {key:<26} median {s['median']:>8} (min {s['min']}, max {s['max']})")
