"""Every API error, in one shape: ``{"error": {"code", "message", "details": [...]}}``.

``exception_handler`` (DRF's EXCEPTION_HANDLER) maps engine and DRF exceptions to HTTP
statuses. ``ApiGuardMiddleware`` refuses oversized bodies with 413 before anything reads them,
and is the last resort for everything under /api/ that DRF does not see (unknown URLs, errors
in other middleware, unexpected exceptions): no response under /api/ is an HTML error page.
A database that cannot be reached is not a bug: 503 ``database_unavailable`` with ``Retry-After``.
"""

from __future__ import annotations

import json
import logging

from django.conf import settings
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig
from django.db import InterfaceError, OperationalError
from django.http import Http404, JsonResponse
from rest_framework import exceptions as drf
from rest_framework.response import Response
from rest_framework.settings import api_settings

from engine import exceptions as engine

log = logging.getLogger("api")

API_PREFIX = "/api/"

# Engine error -> HTTP status. Subclasses not listed fall back to their nearest listed base.
ENGINE_STATUS: dict[type[engine.EngineError], int] = {
    engine.NotFound: 404,
    engine.InvalidTransition: 409,
    engine.IdempotencyConflict: 409,
    engine.GraphInvalid: 400,
    engine.InputsInvalid: 400,
    engine.NodeTypeNotFound: 400,
    engine.TaskNotFound: 400,
    engine.TemplateFailed: 400,
    engine.EngineError: 400,
}

# Codes for statuses produced outside DRF (URL not found, middleware, last resort).
STATUS_CODES = {
    400: "bad_request",
    401: "not_authenticated",
    403: "permission_denied",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    413: "body_too_large",
    415: "unsupported_media_type",
    429: "throttled",
    500: "internal_error",
}

DATABASE_RETRY_AFTER_S = 5  # what a 503 for an unreachable database tells the client to wait


class Conflict(drf.APIException):
    """The request conflicts with what exists (e.g. creating a workflow whose slug is taken)."""

    status_code = 409
    default_code = "conflict"
    default_detail = "conflict"


def error_body(code: str, message: str, details: list | None = None) -> dict:
    return {"error": {"code": code, "message": message, "details": details or []}}


# Engine error codes whose classes live outside engine.exceptions (e.g. engine.integrations.credentials).
ENGINE_CODE_STATUS = {"conflict": 409, "not_found": 404, "invalid_state": 409}


def engine_status(exc: engine.EngineError) -> int:
    if type(exc) not in ENGINE_STATUS and exc.code in ENGINE_CODE_STATUS:
        return ENGINE_CODE_STATUS[exc.code]
    for cls in type(exc).__mro__:
        if cls in ENGINE_STATUS:
            return ENGINE_STATUS[cls]
    return 400


def _flatten(data, path: str = "") -> list[dict]:
    """DRF validation errors (nested dicts/lists of messages) -> [{"path", "message", "code"}]."""
    if isinstance(data, dict):
        out = []
        for key, value in data.items():
            sub = key if key != api_settings.NON_FIELD_ERRORS_KEY else ""
            out.extend(_flatten(value, f"{path}.{sub}" if path and sub else (sub or path)))
        return out
    if isinstance(data, list):
        if all(isinstance(item, (str, drf.ErrorDetail)) for item in data):
            return [_detail(item, path) for item in data]
        out = []
        for i, item in enumerate(data):
            out.extend(_flatten(item, f"{path}[{i}]"))
        return out
    return [_detail(data, path)]


def _detail(item, path: str) -> dict:
    entry = {"message": str(item), "code": getattr(item, "code", "invalid")}
    if path:
        entry["path"] = path
    return entry


def database_unavailable(exc: BaseException) -> bool:
    """Whether ``exc`` says the database cannot be reached (refused, dropped, shutting down), rather than that
    a statement was wrong: a connection error has no SQLSTATE, or one of class 08 or 57P."""
    if isinstance(exc, InterfaceError):  # the connection was already closed
        return True
    if not isinstance(exc, OperationalError):
        return False
    sqlstate = getattr(exc.__cause__, "sqlstate", None)
    return sqlstate is None or sqlstate.startswith(("08", "57P"))


def database_unavailable_body() -> dict:
    return error_body("database_unavailable",
                      f"the database cannot be reached; try again in {DATABASE_RETRY_AFTER_S} seconds")


def log_database_unavailable(request, exc: BaseException) -> None:
    first_line = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    log.warning("database unavailable in %s %s: %s", request.method, request.path, first_line)


def exception_handler(exc, context):
    """DRF EXCEPTION_HANDLER: the one mapping from exceptions to HTTP error responses."""
    headers = {}
    if database_unavailable(exc):
        log_database_unavailable(context["request"], exc)
        return Response(database_unavailable_body(), status=503,
                        headers={"Retry-After": str(DATABASE_RETRY_AFTER_S)})
    if isinstance(exc, engine.EngineError):
        status = engine_status(exc)
        return Response(error_body(exc.code, exc.message, exc.details), status=status)
    if isinstance(exc, Http404):
        exc = drf.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = drf.PermissionDenied()
    elif isinstance(exc, RequestDataTooBig):
        return Response(_too_big_body(), status=413)
    if not isinstance(exc, drf.APIException):
        return None  # unexpected: ApiGuardMiddleware logs it and answers 500
    if getattr(exc, "auth_header", None):
        headers["WWW-Authenticate"] = exc.auth_header
    if getattr(exc, "wait", None):
        headers["Retry-After"] = str(int(exc.wait))
    if isinstance(exc, drf.ValidationError):
        details = _flatten(exc.detail)
        first = details[0] if details else {"message": "invalid request"}
        where = f"{first['path']}: " if first.get("path") else ""
        body = error_body("invalid", f"invalid request: {where}{first['message']}", details)
    elif isinstance(exc, drf.ParseError):
        body = error_body("malformed_request", str(exc.detail))
    elif isinstance(exc, drf.PermissionDenied) and str(exc.detail).startswith("CSRF Failed"):
        body = error_body("csrf_failed", str(exc.detail))
    else:
        code = getattr(exc.detail, "code", None) or exc.default_code
        if isinstance(exc, drf.NotAuthenticated | drf.AuthenticationFailed):
            code = "not_authenticated" if isinstance(exc, drf.NotAuthenticated) else "authentication_failed"
        message = exc.detail if isinstance(exc.detail, str) else json.dumps(exc.detail)
        body = error_body(str(code), str(message))
    return Response(body, status=exc.status_code, headers=headers)


def _too_big_body() -> dict:
    limit = settings.WEFT_MAX_BODY_BYTES
    return error_body("body_too_large", f"request body is larger than {limit} bytes (WEFT_MAX_BODY_BYTES)",
                      [{"limit": limit}])


class ApiGuardMiddleware:
    """For paths under /api/: 413 for oversized bodies, and JSON instead of any HTML error page."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if not request.path.startswith(API_PREFIX):
            return self.get_response(request)
        if self._too_big(request):
            return JsonResponse(_too_big_body(), status=413)
        response = self.get_response(request)
        if response.status_code >= 400 and not response.get("Content-Type", "").startswith("application/json"):
            status = response.status_code
            data = getattr(response, "data", None)  # a DRF view whose renderers are not JSON (schema/, docs/)
            if isinstance(data, dict) and isinstance(data.get("error"), dict):
                replaced = JsonResponse({"error": data["error"]}, status=status)  # renderers may add keys
            else:
                code = STATUS_CODES.get(status, "internal_error" if status >= 500 else "error")
                message = {404: f"no API endpoint at {request.path}",
                           405: f"method {request.method} is not allowed here"}.get(status, code.replace("_", " "))
                replaced = JsonResponse(error_body(code, message), status=status)
            for header in ("Allow", "WWW-Authenticate", "Retry-After"):
                if response.has_header(header):
                    replaced[header] = response[header]
            return replaced
        return response

    def process_exception(self, request, exception):
        if not request.path.startswith(API_PREFIX):
            return None
        if isinstance(exception, RequestDataTooBig):
            return JsonResponse(_too_big_body(), status=413)
        if database_unavailable(exception):
            log_database_unavailable(request, exception)
            response = JsonResponse(database_unavailable_body(), status=503)
            response["Retry-After"] = str(DATABASE_RETRY_AFTER_S)
            return response
        log.error("unhandled error in %s %s", request.method, request.path, exc_info=exception)
        return JsonResponse(
            error_body("internal_error", "internal error; it has been logged"), status=500
        )

    @staticmethod
    def _too_big(request) -> bool:
        limit = settings.WEFT_MAX_BODY_BYTES
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        if length > limit:
            return True
        if length == 0 and request.method in ("POST", "PUT", "PATCH"):
            # No length given (chunked): the server has buffered the body; measure it.
            try:
                return len(request.body) > limit
            except RequestDataTooBig:
                return True
        return False
