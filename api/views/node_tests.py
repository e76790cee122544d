"""Testing one node from the editor: POST runs it with sample inputs; GET reads the sample to start from."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import serializers
from rest_framework.response import Response

from api.converters import SLUG
from api.permissions import CanDesign
from api.serializers import ErrorSerializer, JsonValueField, LogLineSerializer
from api.views.base import ApiView, actor, parse, parse_query
from engine.services.node_tests import node_test_sample
from engine.worker.trial import node_test

NODE_ID_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"


class NodeSampleSerializer(serializers.Serializer):
    output = JsonValueField(required=False, allow_null=True, default=None, help_text="the node's output")
    status = serializers.CharField(required=False, max_length=16, help_text="default: succeeded")


class SampleContextSerializer(serializers.Serializer):
    """What the node's templates read: ``inputs`` and ``nodes.<id>.output``; a mapped node's ``item``."""

    inputs = serializers.DictField(required=False, default=dict, help_text="the workflow's inputs")
    nodes = serializers.DictField(child=NodeSampleSerializer(), required=False, default=dict,
                                  help_text="{node id: {output}} of the nodes upstream")
    item = JsonValueField(required=False, allow_null=True, help_text="a mapped node's item (default: the first "
                                                                      "of its for_each list)")
    item_index = serializers.IntegerField(required=False, min_value=0)


class NodeTestInputSerializer(serializers.Serializer):
    node = serializers.DictField(help_text="the node as the editor has it: id, type, config, and optionally queue, "
                                           "timeout_s, for_each; checked as a save checks it")
    context = SampleContextSerializer(required=False)


class NodeTestErrorSerializer(serializers.Serializer):
    type = serializers.CharField(help_text="the error's class, e.g. HttpClientError")
    message = serializers.CharField(allow_blank=True)


class NodeTestWaitSerializer(serializers.Serializer):
    reason = serializers.CharField()
    detail = JsonValueField(allow_null=True)


class NodeTestCallSerializer(serializers.Serializer):
    key = serializers.CharField()
    position = serializers.IntegerField()
    status = serializers.CharField()
    duration_ms = serializers.FloatField(required=False)
    result = JsonValueField(required=False, allow_null=True)
    error = serializers.CharField(required=False, allow_blank=True)
    error_type = serializers.CharField(required=False)


class NodeTestResultSerializer(serializers.Serializer):
    node_id = serializers.CharField()
    ok = serializers.BooleanField(help_text="the node returned an output")
    output = JsonValueField(allow_null=True)
    error = NodeTestErrorSerializer(allow_null=True)
    waits = NodeTestWaitSerializer(allow_null=True, help_text="what the node would wait for in a run")
    duration_ms = serializers.FloatField()
    logs = LogLineSerializer(many=True)
    calls = NodeTestCallSerializer(many=True, help_text="its journaled calls, kept for this answer only")
    metrics = serializers.DictField()


@extend_schema_field({"type": "string", "pattern": NODE_ID_PATTERN, "maxLength": 120})
class NodeIdField(serializers.RegexField):
    def __init__(self, **kwargs):
        super().__init__(NODE_ID_PATTERN, max_length=120, **kwargs)


class NodeTestSampleQuerySerializer(serializers.Serializer):
    node = NodeIdField(help_text="the node to test")
    upstream = serializers.RegexField(r"^[A-Za-z_][A-Za-z0-9_]*(,[A-Za-z_][A-Za-z0-9_]*)*$", required=False,
                                      max_length=2000, help_text="comma-separated ids of the nodes upstream "
                                                                  "(default: every other node)")


class NodeTestSampleSerializer(serializers.Serializer):
    context = serializers.DictField(help_text="inputs and nodes.<id>.output from the last run; {} without one")
    run_id = serializers.CharField(allow_null=True)
    version = serializers.IntegerField(allow_null=True)


class NodeTestApi(ApiView):
    permissions = {"get": CanDesign, "post": CanDesign}

    @extend_schema(
        tags=["workflows"], operation_id="node_test_sample", summary="Sample inputs for testing a node",
        description="The inputs of the workflow's last run and the outputs its steps had upstream of the node.",
        parameters=[SLUG, NodeTestSampleQuerySerializer],
        responses={200: NodeTestSampleSerializer, 403: ErrorSerializer, 404: ErrorSerializer},
    )
    def get(self, request, slug):
        query = parse_query(NodeTestSampleQuerySerializer, request.query_params)
        upstream = query["upstream"].split(",") if query.get("upstream") else None
        sample = node_test_sample(slug=slug, node_id=query["node"], upstream=upstream)
        return Response(NodeTestSampleSerializer(sample).data)

    @extend_schema(
        tags=["workflows"], operation_id="node_test", summary="Test one node with sample inputs",
        description="Runs the node's real code once, outside any run (nothing is recorded), under a time cap. "
                    "400 graph_invalid: the node would not save; 400 not_testable: a node that waits inside a run "
                    "or starts one. A node that fails answers 200 with ok false and its error.",
        parameters=[SLUG], request=NodeTestInputSerializer,
        responses={200: NodeTestResultSerializer, 400: ErrorSerializer, 403: ErrorSerializer, 404: ErrorSerializer},
    )
    def post(self, request, slug):
        body = parse(NodeTestInputSerializer, request.data)
        context = body.get("context") or {"inputs": {}, "nodes": {}}
        result = node_test(slug=slug, node=body["node"], context=context, actor=actor(request))
        return Response(NodeTestResultSerializer(result).data)
