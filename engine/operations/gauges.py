"""Gauges read from the database when ``/metrics`` is scraped: queues, live clusters, runs, waiting steps."""

from __future__ import annotations

import logging

from engine import statements
from engine.core.queues import queue_stats
from engine.observability.run_tally import runs_by_status
from engine.states import RunStatus, StepStatus

SQL = statements.load(__file__, "sql/gauges.sql")

log = logging.getLogger(__name__)


class DatabaseCollector:
    """Gauges computed from the database at scrape time: queues, live clusters, runs and waiting steps."""

    def collect(self):
        from django.db import DatabaseError, connection
        from prometheus_client.core import GaugeMetricFamily

        up = GaugeMetricFamily("weft_database_up", "Whether /metrics could read the database (1) or not (0)")
        try:
            stats = queue_stats()
            with connection.cursor() as cur:
                runs = runs_by_status(cur)
                statements.execute(cur, SQL["steps_waiting_by_reason"], {"waiting": StepStatus.WAITING})
                waiting = dict(cur.fetchall())
        except DatabaseError:
            log.warning("metrics: cannot read the database", exc_info=True)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        per_queue = [
            ("weft_queue_depth", "Steps queued and waiting for a worker", "depth"),
            ("weft_queue_running", "Steps running", "running"),
            ("weft_queue_oldest_waiting_seconds", "Age of the oldest queued step (0 when none)", "oldest_queued_s"),
            ("weft_queue_clusters_online", "Live worker clusters serving the queue", "clusters_online"),
            ("weft_queue_workers_online", "Worker processes of the live clusters", "workers_online"),
        ]
        for name, help_text, key in per_queue:
            family = GaugeMetricFamily(name, help_text, labels=["queue"])
            for q in stats:
                family.add_metric([q["name"]], float(q[key] or 0))
            yield family
        by_status = GaugeMetricFamily("weft_runs", "Runs by status", labels=["status"])
        for status in RunStatus.values:
            by_status.add_metric([status], runs.get(status, 0))
        yield by_status
        steps_waiting = GaugeMetricFamily("weft_steps_waiting", "Steps waiting (approval, sleep, in doubt, ...)",
                                          labels=["reason"])
        for reason, n in sorted(waiting.items(), key=lambda kv: kv[0] or ""):
            steps_waiting.add_metric([reason or "unknown"], n)
        yield steps_waiting
