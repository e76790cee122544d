"""The public receiving URL of webhook endpoints, ``POST /hooks/<id>/``: no session and no token; the Standard
Webhooks signature is the authentication (engine.services.webhooks). Outside /api/ and outside the OpenAPI
schema: senders are other systems, not API clients."""

from __future__ import annotations

from django.conf import settings
from django.http import JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from engine.services.webhooks import webhook_receive


def _body(request) -> bytes | None:
    """The body, or None when it is larger than WEFT_WEBHOOK_MAX_BODY_BYTES (then not read beyond the limit)."""
    limit = settings.WEFT_WEBHOOK_MAX_BODY_BYTES
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        declared = 0
    if declared > limit:
        return None
    body = request.read(limit + 1)
    return None if len(body) > limit else body


@csrf_exempt
@require_POST
def webhook_receive_view(request, endpoint_id):
    answer = webhook_receive(endpoint_id=endpoint_id, body=_body(request), headers=dict(request.headers))
    response = JsonResponse(answer.body, status=answer.status)
    for name, value in answer.headers.items():
        response[name] = value
    return response
