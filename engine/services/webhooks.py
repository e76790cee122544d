"""Webhook endpoints: signed HTTP deliveries that start runs.

An endpoint belongs to a workflow; its public URL is ``/hooks/<id>/``. Deliveries are signed as the Standard
Webhooks specification says (``webhook-id``, ``webhook-timestamp``, ``webhook-signature``; HMAC-SHA256 over
``id.timestamp.body``; five minutes' tolerance), checked with the ``standardwebhooks`` package. The body (JSON)
becomes the run inputs, directly or through the endpoint's mapping (a template, or a JMESPath expression, over
``{"body", "headers"}``), and is checked against the workflow's input schema by ``run_start``.

The delivery id (``webhook-id``, or the header the endpoint names) is the run's idempotency key
(``webhook:<endpoint>:<delivery id>``): the run table's unique constraint, not a look-up, makes a redelivery
return the first run. Every request is recorded as a ``WebhookDelivery`` (the newest ``KEEP_DELIVERIES``).
"""

from __future__ import annotations

import base64
import json
import re
import secrets
from dataclasses import dataclass, field

from django.db import connection, transaction
from django.db.models.functions import Now
from standardwebhooks.webhooks import Webhook

from engine.exceptions import EngineError, IdempotencyConflict, InputsInvalid, NotFound, TriggerInvalid
from engine.integrations.credentials import secret_decrypt, secret_encrypt
from engine.models import WebhookDelivery, WebhookEndpoint, Workflow
from engine.observability import metrics
from engine.services.expressions import LANGUAGES, expression_apply, expression_check
from engine.services.scheduler import run_start
from engine.statements import execute, load

SQL = load(__file__, "sql/webhooks.sql")
KEEP_DELIVERIES = 200
HEADER_RE = re.compile(r"^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,100}$")
MAX_DELIVERY_ID = 150
Outcome = WebhookDelivery.Outcome


def _invalid(field: str, message: str) -> TriggerInvalid:
    return TriggerInvalid(f"{field}: {message}", details=[{"field": field, "message": message}])


def _new_secret() -> tuple[str, str]:
    """A new signing secret: (the secret, shown once; how it is stored, encrypted)."""
    secret = "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode("ascii")
    return secret, secret_encrypt(secret)


def webhook_url_path(endpoint_id) -> str:
    return f"/hooks/{endpoint_id}/"


def webhook_describe(e: WebhookEndpoint) -> dict:
    return {"id": str(e.id), "workflow": e.workflow.slug, "url": webhook_url_path(e.id), "description": e.description,
            "enabled": e.enabled, "mapping": e.mapping, "mapping_language": e.mapping_language,
            "delivery_id_header": e.delivery_id_header, "rate_per_minute": e.rate_per_minute,
            "rate_burst": e.rate_burst, "created_at": e.created_at, "rotated_at": e.rotated_at}


def _check(fields: dict) -> dict:
    """The settable fields, checked (TriggerInvalid naming the first wrong one)."""
    if "description" in fields and (not isinstance(fields["description"], str) or len(fields["description"]) > 200):
        raise _invalid("description", "at most 200 characters")
    if "enabled" in fields and not isinstance(fields["enabled"], bool):
        raise _invalid("enabled", "true or false")
    language = fields.get("mapping_language", "template")
    if language not in LANGUAGES:
        raise _invalid("mapping_language", f"must be one of {', '.join(LANGUAGES)}, got {language!r}")
    if fields.get("mapping") is not None:
        expression_check(fields["mapping"], language=language, field="mapping")
    header = fields.get("delivery_id_header")
    if header and not HEADER_RE.match(header):
        raise _invalid("delivery_id_header", "an HTTP header name such as X-GitHub-Delivery")
    for name in ("rate_per_minute", "rate_burst"):
        if name in fields and (isinstance(fields[name], bool) or not isinstance(fields[name], int)
                               or not 1 <= fields[name] <= 1_000_000):
            raise _invalid(name, "a whole number from 1 to 1000000")
    return fields


def webhook_create(*, workflow: str, actor=None, **fields) -> tuple[dict, str]:
    """A new endpoint of ``workflow``. Returns (its description, its signing secret): the secret is shown
    this once."""
    wf = Workflow.objects.filter(slug=workflow).first()
    if wf is None:
        raise NotFound(f"workflow {workflow!r} does not exist")
    _check(fields)
    secret, encrypted = _new_secret()
    burst = fields.get("rate_burst", 60)
    endpoint = WebhookEndpoint.objects.create(workflow=wf, secret_encrypted=encrypted,
                                              bucket_tokens=float(burst),
                                              created_by=actor if getattr(actor, "pk", None) else None, **fields)
    return webhook_describe(endpoint), secret


def _get(endpoint_id) -> WebhookEndpoint:
    endpoint = WebhookEndpoint.objects.select_related("workflow").filter(pk=endpoint_id).first()
    if endpoint is None:
        raise NotFound(f"webhook endpoint {endpoint_id} does not exist")
    return endpoint


def webhook_get(endpoint_id) -> dict:
    return webhook_describe(_get(endpoint_id))


def webhook_list(*, workflow: str | None = None) -> list[dict]:
    qs = WebhookEndpoint.objects.select_related("workflow").order_by("created_at")
    if workflow is not None:
        if not Workflow.objects.filter(slug=workflow).exists():
            raise NotFound(f"workflow {workflow!r} does not exist")
        qs = qs.filter(workflow__slug=workflow)
    return [webhook_describe(e) for e in qs]


def webhook_update(*, endpoint_id, **fields) -> dict:
    """Change an endpoint's settings (enabled, description, mapping, mapping_language, delivery_id_header,
    rate_per_minute, rate_burst)."""
    endpoint = _get(endpoint_id)
    merged = {"mapping_language": endpoint.mapping_language, "mapping": endpoint.mapping, **fields}
    _check(merged)
    if fields:
        WebhookEndpoint.objects.filter(pk=endpoint.pk).update(**fields)
    return webhook_get(endpoint_id)


def webhook_rotate(*, endpoint_id) -> tuple[dict, str]:
    """A new signing secret (the old one stops working at once). Returns (description, the new secret)."""
    secret, encrypted = _new_secret()
    if not WebhookEndpoint.objects.filter(pk=endpoint_id).update(secret_encrypted=encrypted, rotated_at=Now()):
        raise NotFound(f"webhook endpoint {endpoint_id} does not exist")
    return webhook_get(endpoint_id), secret


def webhook_delete(*, endpoint_id) -> None:
    if not WebhookEndpoint.objects.filter(pk=endpoint_id).delete()[0]:
        raise NotFound(f"webhook endpoint {endpoint_id} does not exist")


def webhook_deliveries(*, endpoint_id, limit: int = 20) -> list[dict]:
    _get(endpoint_id)
    return [{"id": d.pk, "delivery_id": d.delivery_id, "received_at": d.received_at, "outcome": d.outcome,
             "status_code": d.status_code, "run": str(d.run_id) if d.run_id else None, "error": d.error}
            for d in WebhookDelivery.objects.filter(endpoint_id=endpoint_id).order_by("-id")[:limit]]


# -- receiving --------------------------------------------------------------------------------------


@dataclass
class Answer:
    """What the receiving URL answers: an HTTP status and a JSON body."""

    status: int
    body: dict
    headers: dict = field(default_factory=dict)


def _error(status: int, code: str, message: str, details: list | None = None) -> Answer:
    return Answer(status, {"error": {"code": code, "message": message, "details": details or []}})


def webhook_receive(*, endpoint_id, body: bytes | None, headers: dict[str, str]) -> Answer:
    """Answer one request to ``/hooks/<endpoint_id>/``. ``body`` None: it was larger than the limit (not read).
    No refused request starts a run."""
    endpoint = WebhookEndpoint.objects.select_related("workflow").filter(pk=endpoint_id, enabled=True).first()
    if endpoint is None:
        metrics.webhook_delivery(outcome="not_found")
        return _error(404, "not_found", "no enabled webhook endpoint has this URL")
    headers = {k.lower(): v for k, v in headers.items()}
    delivery_id = headers.get((endpoint.delivery_id_header or "webhook-id").lower(), "")[:MAX_DELIVERY_ID]
    if body is None:
        return _record(endpoint, delivery_id, Outcome.TOO_LARGE,
                       _error(413, "body_too_large", "the body is larger than WEFT_WEBHOOK_MAX_BODY_BYTES"))
    with connection.cursor() as cur:
        execute(cur, SQL["webhook_bucket_take"], {"endpoint": endpoint.pk})
        if cur.fetchone() is None:
            answer = _error(429, "throttled", f"this endpoint accepts {endpoint.rate_per_minute} deliveries a "
                            f"minute (bursts of {endpoint.rate_burst}); retry later")
            answer.headers["Retry-After"] = str(max(1, round(60 / endpoint.rate_per_minute)))
            return _record(endpoint, delivery_id, Outcome.RATE_LIMITED, answer)
    try:
        secret = secret_decrypt(endpoint.secret_encrypted, what=f"the signing secret of webhook {endpoint.pk}")
        Webhook(secret).verify(body, headers, json_parse=False)
    except Exception as exc:  # noqa: BLE001 - any malformed header or signature is a bad signature
        reason = str(exc) if isinstance(exc, EngineError) or "timestamp" in str(exc).lower() else \
            "no valid signature (webhook-id, webhook-timestamp, webhook-signature; Standard Webhooks)"
        return _record(endpoint, delivery_id, Outcome.BAD_SIGNATURE,
                       _error(401, "bad_signature", f"signature refused: {reason}"))
    if not delivery_id:
        return _record(endpoint, "", Outcome.INVALID, _error(
            400, "trigger_invalid", f"the delivery id header {endpoint.delivery_id_header!r} is missing",
            [{"field": endpoint.delivery_id_header}]))
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        return _record(endpoint, delivery_id, Outcome.INVALID,
                       _error(400, "trigger_invalid", f"the body is not JSON: {exc}", [{"field": "body"}]))
    try:
        inputs = payload if endpoint.mapping is None else expression_apply(
            endpoint.mapping, language=endpoint.mapping_language, data={"body": payload, "headers": headers},
            field="mapping")
        if not isinstance(inputs, dict):
            raise _invalid("mapping" if endpoint.mapping is not None else "body",
                           f"the run inputs must be a JSON object, got {type(inputs).__name__}")
        with transaction.atomic():
            run, created = run_start(workflow=endpoint.workflow, inputs=inputs,
                                     idempotency_key=f"webhook:{endpoint.pk}:{delivery_id}",
                                     trigger={"kind": "webhook", "endpoint": str(endpoint.pk),
                                              "delivery_id": delivery_id})
            answer = Answer(202, {"run": str(run.pk), "delivery_id": delivery_id, "duplicate": not created})
            return _record(endpoint, delivery_id, Outcome.ACCEPTED if created else Outcome.DUPLICATE, answer, run=run)
    except (TriggerInvalid, InputsInvalid) as exc:
        return _record(endpoint, delivery_id, Outcome.INVALID, _error(400, exc.code, exc.message, exc.details))
    except IdempotencyConflict as exc:
        return _record(endpoint, delivery_id, Outcome.INVALID, _error(409, exc.code, exc.message))
    except EngineError as exc:  # an archived workflow, one without a version
        return _record(endpoint, delivery_id, Outcome.REFUSED, _error(409, exc.code, exc.message))


def _record(endpoint: WebhookEndpoint, delivery_id: str, outcome: str, answer: Answer, *, run=None) -> Answer:
    error = answer.body.get("error", {}).get("message", "") if answer.status >= 400 else ""
    WebhookDelivery.objects.create(endpoint=endpoint, delivery_id=delivery_id, outcome=outcome,
                                   status_code=answer.status, run=run, error=error[:2000])
    with connection.cursor() as cur:
        execute(cur, SQL["webhook_deliveries_trim"], {"endpoint": endpoint.pk, "keep": KEEP_DELIVERIES})
    metrics.webhook_delivery(outcome=outcome)
    return answer
