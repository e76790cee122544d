"""Webhook endpoints and event triggers of workflows, and sending events (docs/triggers.md). A webhook's
signing secret leaves the server twice only: when the endpoint is created and when it is rotated."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.response import Response

from api.converters import SLUG
from api.permissions import CanDesign, CanSendEvents
from api.serializers import ErrorSerializer
from api.trigger_serializers import (
    EventResultSerializer,
    EventSendSerializer,
    EventTriggerCreateSerializer,
    EventTriggerSerializer,
    WebhookCreateSerializer,
    WebhookDeliverySerializer,
    WebhookSerializer,
    WebhookUpdateSerializer,
    WebhookWithSecretSerializer,
)
from api.views.base import ApiView, actor, parse
from engine.services import events, webhooks

WEBHOOK_TAG, EVENT_TAG = ["webhooks"], ["events"]
WEBHOOK_ID = OpenApiParameter("webhook_id", OpenApiTypes.UUID, OpenApiParameter.PATH, description="webhook id")
TRIGGER_ID = OpenApiParameter("trigger_id", OpenApiTypes.INT, OpenApiParameter.PATH, description="event trigger id")


def _absolute(request, described: dict) -> dict:
    return {**described, "url": request.build_absolute_uri(described["url"])}


def _with_secret(request, made: tuple[dict, str], *, status: int) -> Response:
    """The answer to a create or a rotation: the endpoint and its new signing secret, the one time it leaves the
    server."""
    described, secret = made
    return Response(WebhookWithSecretSerializer({**_absolute(request, described), "secret": secret}).data,
                    status=status)


class WorkflowWebhooksApi(ApiView):
    permissions = {"post": CanDesign}

    @extend_schema(tags=WEBHOOK_TAG, operation_id="workflow_webhook_list", summary="A workflow's webhook endpoints",
                   parameters=[SLUG], responses={200: WebhookSerializer(many=True), 404: ErrorSerializer})
    def get(self, request, slug):
        return Response(WebhookSerializer([_absolute(request, w) for w in webhooks.webhook_list(workflow=slug)],
                                          many=True).data)

    @extend_schema(tags=WEBHOOK_TAG, operation_id="workflow_webhook_create",
                   summary="Create a webhook endpoint; its signing secret is in this answer only",
                   parameters=[SLUG], request=WebhookCreateSerializer,
                   responses={201: WebhookWithSecretSerializer, 400: ErrorSerializer, 404: ErrorSerializer})
    def post(self, request, slug):
        body = parse(WebhookCreateSerializer, request.data)
        return _with_secret(request, webhooks.webhook_create(workflow=slug, actor=actor(request), **body), status=201)


class WebhookDetailApi(ApiView):
    permissions = {"patch": CanDesign, "delete": CanDesign}

    @extend_schema(tags=WEBHOOK_TAG, operation_id="webhook_get", summary="A webhook endpoint",
                   parameters=[WEBHOOK_ID], responses={200: WebhookSerializer, 404: ErrorSerializer})
    def get(self, request, webhook_id):
        return Response(WebhookSerializer(_absolute(request, webhooks.webhook_get(webhook_id))).data)

    @extend_schema(tags=WEBHOOK_TAG, operation_id="webhook_update",
                   summary="Enable or disable a webhook endpoint, change its mapping, delivery id header or rate",
                   parameters=[WEBHOOK_ID], request=WebhookUpdateSerializer,
                   responses={200: WebhookSerializer, 400: ErrorSerializer, 404: ErrorSerializer})
    def patch(self, request, webhook_id):
        body = parse(WebhookUpdateSerializer, request.data)
        return Response(WebhookSerializer(_absolute(request, webhooks.webhook_update(endpoint_id=webhook_id,
                                                                                     **body))).data)

    @extend_schema(tags=WEBHOOK_TAG, operation_id="webhook_delete", summary="Delete a webhook endpoint",
                   parameters=[WEBHOOK_ID], responses={204: None, 404: ErrorSerializer})
    def delete(self, request, webhook_id):
        webhooks.webhook_delete(endpoint_id=webhook_id)
        return Response(status=204)


class WebhookRotateApi(ApiView):
    permissions = {"post": CanDesign}

    @extend_schema(tags=WEBHOOK_TAG, operation_id="webhook_rotate",
                   summary="Replace a webhook endpoint's signing secret; the new one is in this answer only",
                   parameters=[WEBHOOK_ID], request=None,
                   responses={200: WebhookWithSecretSerializer, 404: ErrorSerializer})
    def post(self, request, webhook_id):
        return _with_secret(request, webhooks.webhook_rotate(endpoint_id=webhook_id), status=200)


class WebhookDeliveriesApi(ApiView):

    @extend_schema(tags=WEBHOOK_TAG, operation_id="webhook_deliveries",
                   summary="A webhook endpoint's last 20 deliveries, newest first",
                   parameters=[WEBHOOK_ID], responses={200: WebhookDeliverySerializer(many=True), 404: ErrorSerializer})
    def get(self, request, webhook_id):
        return Response(WebhookDeliverySerializer(webhooks.webhook_deliveries(endpoint_id=webhook_id),
                                                  many=True).data)


class WorkflowEventTriggersApi(ApiView):
    permissions = {"post": CanDesign}

    @extend_schema(tags=EVENT_TAG, operation_id="workflow_event_trigger_list", summary="A workflow's event triggers",
                   parameters=[SLUG], responses={200: EventTriggerSerializer(many=True), 404: ErrorSerializer})
    def get(self, request, slug):
        return Response(EventTriggerSerializer(events.event_trigger_list(workflow=slug), many=True).data)

    @extend_schema(tags=EVENT_TAG, operation_id="workflow_event_trigger_create",
                   summary="Start a run of this workflow for each event of a name (whose filter is true)",
                   parameters=[SLUG], request=EventTriggerCreateSerializer,
                   responses={201: EventTriggerSerializer, 400: ErrorSerializer, 404: ErrorSerializer})
    def post(self, request, slug):
        body = parse(EventTriggerCreateSerializer, request.data)
        created = events.event_trigger_create(workflow=slug, actor=actor(request), **body)
        return Response(EventTriggerSerializer(created).data, status=201)


class EventTriggerDetailApi(ApiView):
    permissions = {"delete": CanDesign}

    @extend_schema(tags=EVENT_TAG, operation_id="event_trigger_delete", summary="Delete an event trigger",
                   parameters=[TRIGGER_ID], responses={204: None, 404: ErrorSerializer})
    def delete(self, request, trigger_id):
        events.event_trigger_delete(trigger_id=trigger_id)
        return Response(status=204)


class EventSendApi(ApiView):
    permissions = {"post": CanSendEvents}

    @extend_schema(tags=EVENT_TAG, operation_id="event_send",
                   summary="Send an event: start the runs its triggers ask for, wake the steps waiting for it",
                   request=EventSendSerializer,
                   responses={202: EventResultSerializer, 200: EventResultSerializer, 400: ErrorSerializer})
    def post(self, request):
        body = parse(EventSendSerializer, request.data)
        result = events.event_send(name=body["name"], payload=body["payload"], event_id=body.get("id"),
                                   key=body["key"], actor=actor(request))
        return Response(EventResultSerializer(result).data, status=200 if result["duplicate"] else 202)
