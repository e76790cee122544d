"""The workflow page's run analytics: the figures of ``workflow_analytics`` laid out as small inline
SVG bar charts (server-rendered; no chart library). Geometry only: the template draws it."""

from __future__ import annotations

from dataclasses import dataclass

DAYS_CHOICES = (1, 2, 7, 30, 90, 365)
WIDTH = 640
HEIGHT = 140


@dataclass
class Bar:
    x: float
    width: float
    y: float
    height: float
    kind: str  # which series: "failed", "other", "retries"
    value: int
    title: str


@dataclass
class Chart:
    label: str
    bars: list[Bar]
    peak: int
    first: str
    last: str
    total: int
    width: int = WIDTH
    height: int = HEIGHT


def parse_days(raw: str | None, default: int = 30) -> int:
    try:
        days = int(raw or default)
    except ValueError:
        return default
    return days if days in DAYS_CHOICES else default


def _when(at, bucket: str) -> str:
    return at.strftime("%Y-%m-%d %H:00") if bucket == "hour" else at.strftime("%Y-%m-%d")


def _slots(series: list[dict]) -> tuple[float, float]:
    """Slot width and bar width for ``len(series)`` bars across the chart."""
    slot = WIDTH / max(1, len(series))
    return slot, max(1.0, slot * 0.8)


def _scale(value: int, peak: int) -> float:
    return round(HEIGHT * value / peak, 2) if peak else 0.0


def runs_chart(analytics: dict) -> Chart:
    """Runs created per hour or day, each bar split into failed runs (hatched) and the rest."""
    series, bucket = analytics["series"], analytics["bucket"]
    slot, width = _slots(series)
    peak = max((p["runs"] for p in series), default=0)
    bars = []
    for i, p in enumerate(series):
        when, x = _when(p["at"], bucket), round(i * slot, 2)
        failed, other = p["failed_runs"], p["runs"] - p["failed_runs"]
        h_other, h_failed = _scale(other, peak), _scale(failed, peak)
        title = f"{when}: {p['runs']} runs, {failed} failed"
        if other:
            bars.append(Bar(x, width, round(HEIGHT - h_other, 2), h_other, "other", other, title))
        if failed:
            bars.append(Bar(x, width, round(HEIGHT - h_other - h_failed, 2), h_failed, "failed", failed, title))
    return Chart("Runs per " + bucket, bars, peak, _first(series, bucket), _last(series, bucket),
                 sum(p["runs"] for p in series))


def retries_chart(analytics: dict) -> Chart:
    """Attempts after a step's first (retries and reruns) per hour or day."""
    series, bucket = analytics["series"], analytics["bucket"]
    slot, width = _slots(series)
    peak = max((p["retries"] for p in series), default=0)
    bars = []
    for i, p in enumerate(series):
        if not p["retries"]:
            continue
        h = _scale(p["retries"], peak)
        bars.append(Bar(round(i * slot, 2), width, round(HEIGHT - h, 2), h, "retries", p["retries"],
                        f"{_when(p['at'], bucket)}: {p['retries']} retries, {p['failed_attempts']} failed attempts"))
    return Chart("Retries per " + bucket, bars, peak, _first(series, bucket), _last(series, bucket),
                 sum(p["retries"] for p in series))


def _first(series: list[dict], bucket: str) -> str:
    return _when(series[0]["at"], bucket) if series else ""


def _last(series: list[dict], bucket: str) -> str:
    return _when(series[-1]["at"], bucket) if series else ""


def percent(rate: float | None) -> str:
    return "—" if rate is None else f"{rate * 100:.0f}%"
