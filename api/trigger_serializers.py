"""Serializers of webhook endpoints, event triggers and events (docs/triggers.md)."""

from __future__ import annotations

from rest_framework import serializers

from api.serializers import JsonValueField, StrictCharField
from engine.models import EventTrigger, WebhookDelivery, WebhookEndpoint


class StrictBooleanField(serializers.BooleanField):
    """A JSON true or false: 0, 1 and strings like "yes" are refused, as the schema says."""

    def to_internal_value(self, data):
        if not isinstance(data, bool):
            self.fail("invalid", input=data)
        return data


LANGUAGE_HELP = "template: a Weft template (any JSON whose strings are templates); jmespath: a JMESPath expression"


class WebhookSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    workflow = serializers.CharField()
    url = serializers.CharField(help_text="the public URL deliveries are POSTed to (no session or token: the "
                                          "Standard Webhooks signature authenticates them)")
    description = serializers.CharField(allow_blank=True)
    enabled = serializers.BooleanField()
    mapping = JsonValueField(allow_null=True)
    mapping_language = serializers.ChoiceField(choices=WebhookEndpoint.MappingLanguage.choices)
    delivery_id_header = serializers.CharField(allow_blank=True)
    rate_per_minute = serializers.IntegerField()
    rate_burst = serializers.IntegerField()
    created_at = serializers.DateTimeField()
    rotated_at = serializers.DateTimeField(allow_null=True)


class WebhookWithSecretSerializer(WebhookSerializer):
    secret = serializers.CharField(help_text="the signing secret (whsec_...), shown this once")


class WebhookUpdateSerializer(serializers.Serializer):
    """A PATCH: the fields given are replaced, the others kept."""

    description = StrictCharField(required=False, allow_blank=True, max_length=200)
    enabled = StrictBooleanField(required=False)
    mapping = JsonValueField(required=False, allow_null=True,
                             help_text="how the body becomes the run inputs, over {body, headers}; null: the body "
                                       "itself. " + LANGUAGE_HELP)
    mapping_language = serializers.ChoiceField(choices=WebhookEndpoint.MappingLanguage.choices, required=False)
    delivery_id_header = StrictCharField(required=False, allow_blank=True, max_length=100,
                                         help_text="the header naming the delivery (e.g. X-GitHub-Delivery); "
                                                   "empty: webhook-id")
    rate_per_minute = serializers.IntegerField(required=False, min_value=1, max_value=1_000_000)
    rate_burst = serializers.IntegerField(required=False, min_value=1, max_value=1_000_000)


class WebhookCreateSerializer(WebhookUpdateSerializer):
    pass


class WebhookDeliverySerializer(serializers.Serializer):
    id = serializers.IntegerField()
    delivery_id = serializers.CharField(allow_blank=True)
    received_at = serializers.DateTimeField()
    outcome = serializers.ChoiceField(choices=WebhookDelivery.Outcome.choices)
    status_code = serializers.IntegerField()
    run = serializers.UUIDField(allow_null=True)
    error = serializers.CharField(allow_blank=True)


class EventTriggerSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    workflow = serializers.CharField()
    name = serializers.CharField()
    filter = serializers.CharField(allow_blank=True)
    filter_language = serializers.ChoiceField(choices=EventTrigger.FilterLanguage.choices)
    inputs = JsonValueField(allow_null=True)
    enabled = serializers.BooleanField()
    created_at = serializers.DateTimeField()


class EventTriggerCreateSerializer(serializers.Serializer):
    name = StrictCharField(max_length=200, help_text="the event name that starts a run")
    filter = StrictCharField(required=False, allow_blank=True, default="", max_length=10_000,
                             help_text="a condition over {payload, name, key, id} that must be true (e.g. "
                                       "payload.priority == 'high'); empty: every event of that name")
    filter_language = serializers.ChoiceField(choices=EventTrigger.FilterLanguage.choices, required=False,
                                              default="template")
    inputs = JsonValueField(required=False, allow_null=True, default=None,
                            help_text="the run inputs, a template over {payload, name, key, id}; null: the payload")
    enabled = StrictBooleanField(required=False, default=True)


class EventSendSerializer(serializers.Serializer):
    name = StrictCharField(max_length=200)
    payload = JsonValueField(required=False, allow_null=True, default=None)
    id = StrictCharField(required=False, max_length=190,
                         help_text="the event's id: a resend with the same id does nothing; default: a new UUID")
    key = StrictCharField(required=False, allow_blank=True, default="", max_length=500,
                          help_text="the correlation key wait_for_event steps match (their rendered 'key')")


class EventRunSerializer(serializers.Serializer):
    run = serializers.UUIDField()
    workflow = serializers.CharField()


class EventWokenSerializer(serializers.Serializer):
    run = serializers.UUIDField()
    step = serializers.CharField()


class EventSkippedSerializer(serializers.Serializer):
    workflow = serializers.CharField()
    error = serializers.CharField()


class EventResultSerializer(serializers.Serializer):
    id = serializers.CharField()
    name = serializers.CharField()
    key = serializers.CharField(allow_blank=True)
    duplicate = serializers.BooleanField(help_text="true: this id was sent before; nothing was done again")
    runs = EventRunSerializer(many=True, help_text="runs started by event triggers")
    woken = EventWokenSerializer(many=True, help_text="wait_for_event steps that received the event")
    skipped = EventSkippedSerializer(many=True, help_text="workflows whose trigger matched but refused the run")
