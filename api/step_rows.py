"""A run's steps in its detail, written from ``queries.run_steps``' rows in one pass.

``StepSerializer`` documents the output and writes a step read as an instance (a step's own endpoints); this
writes the same object from a row: its JSON columns as the text PostgreSQL sent, its timestamps as values that
orjson writes as DRF does (``api.rawjson``). ``tests/api/test_flat.py`` holds each row's output equal to its
step instance's. A 1,000-step run's detail at a million runs: CPU p50 53.7 -> 25.4 ms (docs/benchmarks.md).
"""

from __future__ import annotations

from datetime import UTC

from api.flat import output_zone
from api.rawjson import RawJson, dumps, raw_or_none
from api.serializers import MapSummarySerializer, span_s

_TIMES = ("queued_at", "started_at", "finished_at", "next_attempt_at", "wake_at")


def _zone_of_output():
    """The time zone DRF writes timestamps in (``output_zone``), or None when they are written as read (UTC)."""
    zone = output_zone()
    return None if getattr(zone, "key", None) == "UTC" or zone is UTC else zone


def steps_json(rows: list[dict]) -> RawJson:
    """The JSON array of ``rows`` (``queries.run_steps`` with ``STEP_ROW_FIELDS``), each step as
    ``StepSerializer`` writes it."""
    zone = _zone_of_output()
    out = []
    for r in rows:
        times = [r[name] for name in _TIMES]
        if zone is not None:
            times = [None if t is None else t.astimezone(zone) for t in times]
        summary = r.get("map_summary")
        out.append({
            "node_id": r["node_id"], "node_type": r["node_type"], "queue": r["queue"], "status": r["status"],
            "attempt": r["attempt"], "attempts_count": r["attempts_count"], "waiting_reason": r["waiting_reason"],
            "waiting_detail": raw_or_none(r["waiting_text"]), "output": raw_or_none(r["output_text"]),
            "error": r["error"], "worker": r["worker"], "queued_at": times[0], "started_at": times[1],
            "finished_at": times[2], "next_attempt_at": times[3], "wake_at": times[4],
            "duration_s": span_s(r["started_at"], r["finished_at"]), "map_index": r["map_index"],
            "map": None if summary is None else MapSummarySerializer(summary).data,
        })
    return RawJson(dumps(out))
