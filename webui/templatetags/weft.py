"""Status badges: an icon and a text label for every status, so status is never colour alone."""

from __future__ import annotations

from django import template
from django.utils.html import format_html
from django.utils.safestring import mark_safe

from engine import ids

register = template.Library()

STATUS = {
    "pending": ("○", "Pending"),
    "queued": ("◔", "Queued"),
    "running": ("▶", "Running"),
    "waiting": ("◷", "Waiting"),
    "retry_wait": ("↻", "Retry wait"),
    "succeeded": ("✓", "Succeeded"),
    "failed": ("✕", "Failed"),
    "skipped": ("↷", "Skipped"),
    "upstream_failed": ("⊘", "Upstream failed"),
    "cancelled": ("■", "Cancelled"),
}


@register.simple_tag
def status_icon(status: str | None):
    icon, label = STATUS.get(status or "", ("?", status or "unknown"))
    return format_html('<span aria-hidden="true">{}</span><span class="skip">{}</span>', icon, label)


@register.filter
def status_label(status: str | None) -> str:
    return STATUS.get(status or "", ("?", status or "unknown"))[1]


@register.simple_tag
def status_badge(status: str | None):
    if not status:
        return mark_safe('<span class="badge badge-none">—</span>')  # noqa: S308 (a constant)
    icon, label = STATUS.get(status, ("?", status))
    return format_html('<span class="badge status-{}" data-status="{}"><span aria-hidden="true">{}</span> {}</span>',
                       status, status, icon, label)


@register.filter
def short_id(run_id) -> str:
    """A run's short name: its id's last 8 hex digits (engine.ids.short_id)."""
    return ids.short_id(run_id)


@register.filter
def seconds(value) -> str:
    if value is None:
        return "—"
    value = float(value)
    if value < 60:
        return f"{value:.1f} s"
    if value < 3600:
        return f"{value / 60:.1f} min"
    return f"{value / 3600:.1f} h"
