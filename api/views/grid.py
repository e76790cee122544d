"""A workflow's grid: its last runs as columns, its steps as rows, each cell a step's status."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response

from api.converters import SLUG
from api.serializers import ErrorSerializer
from api.views.base import ApiView, parse_query
from engine.services.queries import GRID_MAX_RUNS, workflow_grid
from engine.services.workflows import workflow_get
from engine.states import RunStatus, StepStatus


class GridQuerySerializer(serializers.Serializer):
    runs = serializers.IntegerField(required=False, default=25, min_value=1, max_value=GRID_MAX_RUNS,
                                    help_text="how many of the newest runs (columns, oldest first)")


class GridRunSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    status = serializers.ChoiceField(choices=RunStatus.choices)
    version = serializers.IntegerField()
    created_at = serializers.DateTimeField()


class GridCellSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=StepStatus.choices)
    attempt = serializers.IntegerField()


class GridRowSerializer(serializers.Serializer):
    node_id = serializers.CharField()
    cells = serializers.ListField(child=GridCellSerializer(allow_null=True),
                                  help_text="one per run, in the order of runs; null where that run's version had "
                                            "no such step")


class GridSerializer(serializers.Serializer):
    runs = GridRunSerializer(many=True)
    rows = GridRowSerializer(many=True)


class WorkflowGridApi(ApiView):
    @extend_schema(tags=["workflows"], operation_id="workflow_grid",
                   summary="The last runs as columns and the steps as rows, each cell a step's status",
                   parameters=[SLUG, GridQuerySerializer], responses={200: GridSerializer, 404: ErrorSerializer})
    def get(self, request, slug):
        query = parse_query(GridQuerySerializer, request.query_params)
        return Response(GridSerializer(workflow_grid(workflow_get(slug), runs=query["runs"])).data)
