"""A workflow's last run as the editor sees it: a sample of its inputs and outputs to complete templates from,
and a template's value in that run."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response

from api.converters import SLUG
from api.serializers import ErrorSerializer, JsonValueField, StrictCharField
from api.views.base import ApiView, parse
from engine.services.samples import template_preview, workflow_sample
from engine.services.workflows import workflow_get
from engine.states import RunStatus, StepStatus

TAG = ["workflows"]


class SampleRunSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    status = serializers.ChoiceField(choices=RunStatus.choices)
    version = serializers.IntegerField()
    created_at = serializers.DateTimeField()


class SampleNodeSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=StepStatus.choices)
    output = JsonValueField(allow_null=True, help_text="the step's output, trimmed")


class SampleSerializer(serializers.Serializer):
    run = SampleRunSerializer(allow_null=True, help_text="the workflow's newest run; null when it never ran")
    inputs = JsonValueField(help_text="the run's inputs, trimmed")
    nodes = serializers.DictField(child=SampleNodeSerializer(), help_text="node id -> its step in that run")
    truncated = serializers.BooleanField(help_text="whether long strings, lists or objects were cut short")


class PreviewInputSerializer(serializers.Serializer):
    template = StrictCharField(max_length=20_000, trim_whitespace=False,
                               help_text="a template as written in a node's config, e.g. "
                                         "{{ nodes.fetch.output.items.0.title }}")
    upstream = serializers.ListField(child=StrictCharField(max_length=120), required=False, default=list,
                                     max_length=1000, help_text="the node's direct predecessors (for `upstream.<id>`)")


class PreviewSerializer(serializers.Serializer):
    run = SampleRunSerializer(allow_null=True, help_text="the run the template was rendered against")
    ok = serializers.BooleanField()
    value = JsonValueField(allow_null=True, help_text="the rendered value (a single {{ expression }} keeps its type), "
                                                      "trimmed")
    text = serializers.CharField(allow_blank=True, help_text="the value as text, cut at 2,000 characters")
    truncated = serializers.BooleanField()
    message = serializers.CharField(allow_blank=True, help_text="why there is no value: no run yet, a syntax error, "
                                                                "a reference without a value in that run")


class WorkflowSampleApi(ApiView):
    @extend_schema(tags=TAG, operation_id="workflow_sample",
                   summary="The newest run's inputs and step outputs, trimmed, for completing templates",
                   parameters=[SLUG], responses={200: SampleSerializer, 404: ErrorSerializer})
    def get(self, request, slug):
        return Response(SampleSerializer(workflow_sample(workflow=workflow_get(slug))).data)


class WorkflowTemplatePreviewApi(ApiView):
    @extend_schema(tags=TAG, operation_id="workflow_template_preview",
                   summary="A template's value in the workflow's newest run (rendered as a run would)",
                   parameters=[SLUG], request=PreviewInputSerializer,
                   responses={200: PreviewSerializer, 400: ErrorSerializer, 404: ErrorSerializer})
    def post(self, request, slug):
        body = parse(PreviewInputSerializer, request.data)
        result = template_preview(workflow=workflow_get(slug), template=body["template"], upstream=body["upstream"])
        return Response(PreviewSerializer(result).data)
