"""What the ``openai`` and ``anthropic`` providers share: the errors a model call raises, the httpx client their
official SDKs are given (its transport is the SSRF guard, ``netguard.GuardedTransport``), and one call through an
SDK with Retry-After back-pressure and the SDK's errors mapped to Weft's.

The SDKs never hold a secret: they are given a placeholder API key, and the transport replaces the
authentication headers they set with the stored credential's headers, only for hosts on its allowed_hosts.
They never retry (``max_retries=0``): a failed call raises, and the engine's retry policy (with the journal
replaying calls that already succeeded) decides what happens next.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable

import httpx
import httpx2

from engine.core.limits import limits_backpressure, limits_before_call
from engine.integrations import netguard
from engine.integrations.credentials import redact

MAX_RETRY_AFTER_S = 10.0
MAX_REPLY_BYTES = 8 * 1024 * 1024
SDK_API_KEY = "weft-key-set-by-transport"  # not a secret: what the SDKs are given instead of the key
SDK_AUTH_HEADERS = ("authorization", "x-api-key")


class LLMUnavailable(Exception):
    """The model endpoint could not be reached, timed out, or answered 429/5xx: worth retrying."""


class LLMRequestRejected(Exception):
    """The model endpoint refused the request (4xx other than 429)."""


class LLMBadResponse(Exception):
    """The endpoint answered, but not with a usable chat completion (or not matching response_schema)."""


GUARD_ERRORS = (netguard.HostNotAllowed, netguard.ResponseTooLarge, LLMUnavailable)


def guarded_client(*, url: str, credential: netguard.CredentialHeaders | None, check_host: bool, timeout_s: float,
                   http=httpx):
    """The client an SDK sends ``url``'s requests with: the SSRF guard, the credential, the limits. ``http``: the
    package the SDK's client is of, ``httpx`` (an ``httpx.Client``) or ``httpx2`` (an ``httpx2.Client``)."""

    def unless_paused():
        held = limits_before_call()  # takes the rate-limit tokens of this request, or says why it may not go
        if held:
            raise LLMUnavailable(f"model endpoint {url} not called: {held}; the step retries once it may")

    guard = netguard.GuardedTransport2 if http is httpx2 else netguard.GuardedTransport
    transport = guard(credential=credential, check=check_host, max_body_bytes=MAX_REPLY_BYTES,
                      before_send=unless_paused, replace_headers=SDK_AUTH_HEADERS)
    return http.Client(transport=transport, timeout=timeout_s, follow_redirects=False, trust_env=False)


def call(sdk, send: Callable[[], object], *, url: str, secret: str, timeout_s: float,
         read: Callable[[object], dict] | None = None) -> tuple[dict, float]:
    """``send()`` makes one request through ``sdk`` (the ``openai`` or ``anthropic`` module) and returns its raw
    response, or, for a streamed reply, the SDK's stream, which ``read`` turns into the reply's body as the
    provider's non-streamed API would have answered it. A 429 or 503 with a short Retry-After is waited out and
    sent again (unless the step's limits pause instead); anything else that fails, before or while the reply is
    read, raises. Returns the decoded JSON body and the latency in ms."""
    started = time.monotonic()
    waited = 0.0
    while True:
        try:
            response = send()
            if read is not None:
                data = read(response)
                return data, round((time.monotonic() - started) * 1000, 1)
            raw = response
            break
        except sdk.APITimeoutError:
            raise LLMUnavailable(f"model endpoint {url} timed out after {timeout_s:g} s") from None
        except (httpx.TimeoutException, httpx2.TimeoutException):  # while a streamed reply was read
            raise LLMUnavailable(f"model endpoint {url} timed out after {timeout_s:g} s") from None
        except (httpx.TransportError, httpx2.TransportError) as exc:
            if isinstance(exc.__cause__, GUARD_ERRORS):
                raise exc.__cause__ from None
            raise LLMUnavailable(redact(f"the connection to model endpoint {url} broke: {exc}", secret)) from None
        except sdk.APIConnectionError as exc:
            reason = exc.__cause__ or exc
            if isinstance(reason, GUARD_ERRORS):  # the anthropic SDK wraps whatever its transport raised
                raise reason from None
            raise LLMUnavailable(redact(f"cannot reach model endpoint {url}: {reason}", secret)) from None
        except sdk.APIStatusError as exc:
            resp = exc.response
            if resp.status_code in (429, 503):
                delay = netguard.retry_after_seconds(resp.headers.get("retry-after"))
                if not limits_backpressure(delay) and delay is not None and waited + delay <= MAX_RETRY_AFTER_S:
                    time.sleep(delay)
                    waited += delay
                    continue
            raise _status_error(resp.status_code, resp.headers, resp.text, secret) from None
    latency_ms = round((time.monotonic() - started) * 1000, 1)
    response = raw.http_response
    text = response.text
    try:
        data = json.loads(text)
    except ValueError:
        data = None
    if not isinstance(data, dict):
        raise LLMBadResponse(redact(f"model endpoint answered {response.status_code} without a usable reply: "
                                    f"{text[:500]}", secret))
    return data, latency_ms


def _status_error(status: int, headers, text: str, secret: str) -> Exception:
    if status == 429 or status >= 500:
        hint = f"; it asked to retry after {headers['retry-after']}" if "retry-after" in headers else ""
        return LLMUnavailable(redact(f"model endpoint answered {status}{hint}: {text[:500]}", secret))
    return LLMRequestRejected(redact(f"model endpoint refused the request ({status}): {text[:1000]}", secret))


def bad_reply(what: str, status: int, data: dict, secret: str) -> LLMBadResponse:
    return LLMBadResponse(redact(f"model endpoint answered {status} without {what}: {json.dumps(data)[:500]}",
                                 secret))
