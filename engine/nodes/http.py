"""The ``http`` node: one HTTP request, idempotent by key, through the SSRF guard."""

from __future__ import annotations

import json
import time

import httpx
from django.conf import settings

from engine.core.limits import limits_backpressure, limits_before_call
from engine.core.registry import node_type
from engine.integrations import netguard
from engine.integrations.credentials import credential_headers, redact, redact_value
from engine.nodes.validation import CredentialUse, url_problems

METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]
IDEMPOTENT_METHODS = {"GET", "HEAD", "PUT", "DELETE", "OPTIONS"}


class HttpRetryable(Exception):
    """Connection error, timeout, 429 or 5xx: the request may succeed if tried again (same idempotency key)."""


class HttpClientError(Exception):
    """The server answered 4xx (other than 429)."""


@node_type("http", label="HTTP request", tokens_per_call=True)
class HttpNode:
    """Send one HTTP request and output the response.

    Sends ``Idempotency-Key`` (stable across retries of this step) unless ``send_idempotency_key`` is
    false. Connection errors, timeouts, 429 and 5xx raise ``HttpRetryable`` (the node's retry policy
    applies); a ``Retry-After`` of at most ``max_retry_after_s`` is waited out in place first, unless the step
    takes limits: then a 429 or 503's Retry-After pauses them (engine.core.limits) and the attempt fails as
    retryable, its retry admitted once the pause is over. Other
    4xx answers raise ``HttpClientError`` unless ``fail_on_status`` is false. Redirects are followed by
    hand, each hop checked by the SSRF guard (``WEFT_HTTP_ALLOWED_HOSTS``).
    """

    config_schema = {
        "type": "object",
        "required": ["url"],
        "additionalProperties": False,
        "properties": {
            "method": {"enum": METHODS, "default": "GET"},
            "url": {"type": "string", "minLength": 1, "description": "http(s) URL (templated)"},
            "headers": {"type": "object", "additionalProperties": {"type": "string"}, "default": {}},
            "query": {"type": "object", "description": "query parameters added to the URL", "default": {}},
            "json": {"description": "JSON request body (templated)"},
            "body": {"type": "string", "description": "raw request body (templated)"},
            "credential": {"type": "string", "description": "name of a stored credential sent as authorization"},
            "timeout_s": {"type": "number", "exclusiveMinimum": 0, "default": 30},
            "send_idempotency_key": {"type": "boolean", "default": True},
            "max_body_bytes": {"type": "integer", "minimum": 1,
                               "description": "response body cap (default WEFT_HTTP_MAX_BODY_BYTES)"},
            "max_redirects": {"type": "integer", "minimum": 0, "maximum": 20, "default": 5},
            "max_retry_after_s": {"type": "number", "minimum": 0, "default": 30},
            "fail_on_status": {"type": "boolean", "default": True,
                               "description": "a 4xx answer fails the step (false: output it)"},
        },
        "not": {"required": ["json", "body"]},
    }
    outputs = {
        "status": "integer HTTP status",
        "headers": "object, lower-case header names",
        "body": "parsed JSON when the response is JSON, else text",
        "url": "final URL after redirects",
    }

    def run(self, ctx, config: dict):
        method = config.get("method") or "GET"
        send_key = config.get("send_idempotency_key", True)
        safe = send_key or method in IDEMPOTENT_METHODS

        def request(idempotency_key: str):
            return send(config, idempotency_key=idempotency_key if send_key else None)

        result = ctx.step("request", request, safe_to_repeat=safe)
        ctx.metrics["http_status"] = result["status"]
        return result

    def validate_config(self, config: dict, *, node_id: str, upstream_ids: set[str], graph) -> list:
        return url_problems(config.get("url"), "url")

    @staticmethod
    def credential_uses(config: dict) -> list[CredentialUse]:
        return [CredentialUse("credential", config.get("credential"), config.get("url"))]

    @staticmethod
    def repeat_risks(config: dict) -> list[str]:
        """The request is not safe to repeat when it sends no Idempotency-Key and its method is not idempotent."""
        method = config.get("method") or "GET"
        if config.get("send_idempotency_key", True) or method in IDEMPOTENT_METHODS:
            return []
        return [f"{method} {config.get('url', '')} without an Idempotency-Key"]


def send(config: dict, *, idempotency_key: str | None) -> dict:
    """Perform the request described by an http node (or HTTP tool) config; returns the node's output."""
    method = config.get("method") or "GET"
    url = config["url"]
    if config.get("query"):
        url = str(httpx.URL(url).copy_merge_params({k: str(v) for k, v in config["query"].items()}))
    headers = {str(k): str(v) for k, v in (config.get("headers") or {}).items()}
    credential = credential_headers(config["credential"]) if config.get("credential") else None
    secret = credential.secret if credential else ""
    content = None
    if config.get("json") is not None:
        content = json.dumps(config["json"]).encode()
        headers.setdefault("Content-Type", "application/json")
    elif config.get("body") is not None:
        content = str(config["body"]).encode()
    if idempotency_key:
        headers["Idempotency-Key"] = idempotency_key
    timeout = float(config.get("timeout_s") or 30)
    cap = config.get("max_body_bytes") or settings.WEFT_HTTP_MAX_BODY_BYTES
    max_wait = float(config.get("max_retry_after_s", 30))
    waited = 0.0

    def unless_paused():
        held = limits_before_call()
        if held:
            raise HttpRetryable(f"{method} {url} not sent: {held}; the step retries once it may")

    while True:
        try:
            resp = netguard.guarded_request(method, url, headers=headers, content=content, timeout_s=timeout,
                                            max_body_bytes=cap, max_redirects=int(config.get("max_redirects", 5)),
                                            credential=credential, before_send=unless_paused)
        except httpx.TimeoutException:
            raise HttpRetryable(f"{method} {url} timed out after {timeout:g} s") from None
        except httpx.HTTPError as exc:
            raise HttpRetryable(redact(f"{method} {url} failed: {type(exc).__name__}: {exc}", secret)) from None
        if resp.status == 429 or resp.status >= 500:
            delay = netguard.retry_after_seconds(resp.headers.get("retry-after"))
            if resp.status in (429, 503) and limits_backpressure(delay):
                raise HttpRetryable(f"{method} {url} answered {resp.status}; its limits pause for {delay:g} s "
                                    "(Retry-After), and the step retries after that")
            if delay is not None and waited + delay <= max_wait:
                time.sleep(delay)
                waited += delay
                continue
            asked = f"; the server asked to retry after {resp.headers['retry-after']}" \
                if "retry-after" in resp.headers else ""
            raise HttpRetryable(redact(f"{method} {url} answered {resp.status}{asked}: "
                                       f"{_snippet(resp)}", secret))
        break
    if resp.status >= 400 and config.get("fail_on_status", True):
        raise HttpClientError(redact(f"{method} {url} answered {resp.status}: {_snippet(resp)}", secret))
    output = {"status": resp.status, "headers": resp.headers, "body": resp.json_or_text(), "url": resp.url}
    return redact_value(output, secret) if secret else output


def _snippet(resp: netguard.Response) -> str:
    return resp.body[:300].decode("utf-8", errors="replace")
