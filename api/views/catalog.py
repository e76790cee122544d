"""What a workflow can be built from and where it runs: node types and queues."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework.response import Response

from api.serializers import NodeTypeSerializer, QueueStatsSerializer
from api.views.base import ApiView
from engine.core.queues import queue_stats
from engine.core.registry import node_types


class NodeTypeListApi(ApiView):
    @extend_schema(tags=["catalog"], operation_id="node_type_list", summary="Registered node types",
                   responses=NodeTypeSerializer(many=True))
    def get(self, request):
        types = sorted(node_types().values(), key=lambda t: t.name)
        return Response(NodeTypeSerializer(types, many=True).data)


class QueueListApi(ApiView):
    @extend_schema(tags=["catalog"], operation_id="queue_list",
                   summary="Each queue: workers online, depth, running, oldest queued age, finished in the last "
                           "minute", responses=QueueStatsSerializer(many=True))
    def get(self, request):
        return Response(QueueStatsSerializer(queue_stats(), many=True).data)
