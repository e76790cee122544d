"""Observability: structured logs, Prometheus metrics, OpenTelemetry traces, run analytics.

- ``logging``: JSON (or human-readable) log lines carrying the step being executed.
- ``metrics``: counters and histograms fed by the worker and recovery, and their exposition (``/metrics`` is
  served by ``engine.operations.metrics_view``, with the database gauges of ``engine.operations.gauges``).
- ``tracing``: spans run -> step -> attempt -> journal entry, and ``traceparent`` for outgoing HTTP.
- ``hooks``: the few calls the worker, the journal and recovery make into the three above.
- ``queries``: searching a run's captured logs; per-workflow analytics.

See docs/observability.md.
"""
