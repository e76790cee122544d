"""The answer to a login attempt while its username and address are locked out (django-axes).

429 with a page that says why and for how long, and a ``Retry-After`` header; see
WEFT_LOGIN_MAX_FAILURES and WEFT_LOGIN_LOCKOUT_S in the README.
"""

from __future__ import annotations

from django.conf import settings
from django.shortcuts import render


def _duration(seconds: int) -> str:
    if seconds < 120:
        return f"{seconds} seconds"
    minutes = round(seconds / 60)
    if minutes < 120:
        return f"{minutes} minutes"
    return f"{round(minutes / 60)} hours"


def lockout_response(request, original_response=None, credentials=None):
    seconds = int(settings.AXES_COOLOFF_TIME.total_seconds())
    username = (credentials or {}).get("username") or request.POST.get("username", "")
    response = render(request, "registration/locked_out.html", {
        "failure_limit": settings.AXES_FAILURE_LIMIT,
        "username": username,
        "lockout": _duration(seconds),
    }, status=429)
    response["Retry-After"] = str(seconds)
    return response
