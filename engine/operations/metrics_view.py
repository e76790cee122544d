"""``/metrics``: the Prometheus exposition, for a bearer token (WEFT_METRICS_TOKEN) or from the
addresses in WEFT_METRICS_ALLOWED_IPS (default: loopback only). No login or session involved."""

from __future__ import annotations

import hmac
import ipaddress
from functools import lru_cache

from django.conf import settings
from django.http import HttpResponse, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe
from prometheus_client import CONTENT_TYPE_LATEST

from engine.observability.metrics import exposition
from engine.operations.gauges import DatabaseCollector


@lru_cache(maxsize=8)
def _networks(allowed: tuple[str, ...]) -> tuple:
    return tuple(ipaddress.ip_network(a, strict=False) for a in allowed)


def _address_allowed(remote: str) -> bool:
    try:
        address = ipaddress.ip_address((remote or "").split("%")[0])
    except ValueError:
        return False
    if address.version == 6 and address.ipv4_mapped:
        address = address.ipv4_mapped
    return any(address in net for net in _networks(tuple(settings.WEFT_METRICS_ALLOWED_IPS)))


def _token_ok(request) -> bool:
    token = settings.WEFT_METRICS_TOKEN
    if not token:
        return False
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode())


def _refused(status: int, code: str, message: str) -> JsonResponse:
    response = JsonResponse({"error": {"code": code, "message": message, "details": []}}, status=status)
    if status == 401:
        response["WWW-Authenticate"] = 'Bearer realm="weft-metrics"'
    return response


@never_cache
@require_safe
def metrics_view(request):
    if not (_token_ok(request) or _address_allowed(request.META.get("REMOTE_ADDR", ""))):
        if settings.WEFT_METRICS_TOKEN:
            return _refused(401, "not_authenticated", "send the metrics token as 'Authorization: Bearer <token>'")
        return _refused(403, "permission_denied", "this address may not read /metrics (WEFT_METRICS_ALLOWED_IPS, "
                                                  "or set WEFT_METRICS_TOKEN)")
    body = exposition(settings.WEFT_METRICS_DIR, collectors=[DatabaseCollector()])
    return HttpResponse(body, content_type=CONTENT_TYPE_LATEST)
