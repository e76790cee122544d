"""A run's steps: detail with every attempt and journal entry, and the operator actions."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.response import Response

from api.converters import NODE_ID, STEP_ID
from api.permissions import CanOperate
from api.serializers import (
    CompleteInputSerializer,
    DecisionInputSerializer,
    ErrorSerializer,
    MapItemSerializer,
    MapItemsQuerySerializer,
    RepeatInputSerializer,
    RerunPreviewSerializer,
    RerunResultSerializer,
    StepDetailSerializer,
)
from api.views.base import ApiView, NumberedPages, actor, parse, parse_query
from engine.services import queries
from engine.services.scheduler import (
    rerun_preview,
    step_approve,
    step_complete,
    step_reject,
    step_rerun_from,
    step_retry,
    step_skip,
)
from engine.services.tool_approvals import tool_call_decide

TAG = ["steps"]
RUN_ID = OpenApiParameter("run_id", OpenApiTypes.UUID, OpenApiParameter.PATH, description="run id")
PATH = [RUN_ID, STEP_ID]
CONFLICT = {409: ErrorSerializer}


def step_data(run_id, node_id: str):
    run = queries.run_get(run_id)
    step = queries.step_get(run, node_id)
    step.attempt_rows = list(queries.step_attempts(step))
    step.journal_rows = list(queries.step_journal(step))
    return step


def step_response(run_id, node_id: str) -> Response:
    return Response(StepDetailSerializer(step_data(run_id, node_id)).data)


class StepDetailApi(ApiView):
    @extend_schema(tags=TAG, operation_id="step_get",
                   summary="Get a step with every attempt (times, worker, outcome, error, traceback, logs, metrics) "
                           "and its journal", parameters=PATH, responses=StepDetailSerializer)
    def get(self, request, run_id, node_id):
        return step_response(run_id, node_id)


class MapItemsApi(ApiView):
    pagination_class = NumberedPages

    @extend_schema(tags=TAG, operation_id="step_items", summary="A mapped node's items, in item order, each with "
                   "its attempts",
                   parameters=[RUN_ID, NODE_ID, MapItemsQuerySerializer, NumberedPages.query_serializer],
                   responses={200: MapItemSerializer(many=True), 404: ErrorSerializer})
    def get(self, request, run_id, node_id):
        query = parse_query(MapItemsQuerySerializer, request.query_params)
        items = queries.map_items(queries.run_get(run_id), node_id, status=query.get("status"))
        return self.paginate(items, MapItemSerializer)


class StepRetryApi(ApiView):
    permissions = {"post": CanOperate}

    @extend_schema(tags=TAG, operation_id="step_retry", summary="Retry a failed step (or one in doubt)",
                   description="A new attempt; blocked downstream steps go back to pending, other steps keep "
                               "their outputs. A second retry of the same failure is refused with 409.",
                   parameters=PATH, request=RepeatInputSerializer,
                   responses={200: StepDetailSerializer, 400: ErrorSerializer, **CONFLICT})
    def post(self, request, run_id, node_id):
        body = parse(RepeatInputSerializer, request.data)
        step_retry(run_id=run_id, node_id=node_id, actor=actor(request), version=body["version"])
        return step_response(run_id, node_id)


class StepRerunFromApi(ApiView):
    permissions = {"post": CanOperate}

    @extend_schema(tags=TAG, operation_id="step_rerun_from", summary="Run a finished step and everything downstream "
                   "again", parameters=PATH, request=RepeatInputSerializer,
                   responses={200: RerunResultSerializer, 400: ErrorSerializer, **CONFLICT})
    def post(self, request, run_id, node_id):
        body = parse(RepeatInputSerializer, request.data)
        rerun = step_rerun_from(run_id=run_id, node_id=node_id, actor=actor(request), version=body["version"])
        return Response(RerunResultSerializer({"rerun": rerun, "step": step_data(run_id, node_id)}).data)


class StepRerunPreviewApi(ApiView):
    @extend_schema(tags=TAG, operation_id="step_rerun_preview", summary="The steps a rerun from here would run again",
                   parameters=PATH, responses=RerunPreviewSerializer)
    def get(self, request, run_id, node_id):
        queries.run_get(run_id)
        return Response(RerunPreviewSerializer({"node_ids": rerun_preview(run_id=run_id, node_id=node_id)}).data)


class StepSkipApi(ApiView):
    permissions = {"post": CanOperate}

    @extend_schema(tags=TAG, operation_id="step_skip", summary="Skip a step that has not succeeded",
                   parameters=PATH, request=None, responses={200: StepDetailSerializer, **CONFLICT})
    def post(self, request, run_id, node_id):
        step_skip(run_id=run_id, node_id=node_id, actor=actor(request))
        return step_response(run_id, node_id)


class StepCompleteApi(ApiView):
    permissions = {"post": CanOperate}

    @extend_schema(tags=TAG, operation_id="step_complete", summary="Mark a step succeeded with the given output",
                   parameters=PATH, request=CompleteInputSerializer,
                   responses={200: StepDetailSerializer, 400: ErrorSerializer, **CONFLICT})
    def post(self, request, run_id, node_id):
        body = parse(CompleteInputSerializer, request.data)
        step_complete(run_id=run_id, node_id=node_id, output=body["output"], actor=actor(request))
        return step_response(run_id, node_id)


class StepApproveApi(ApiView):
    permissions = {"post": CanOperate}

    @extend_schema(tags=TAG, operation_id="step_approve",
                   summary="Approve a step waiting for approval, or (with tool_call) an agent's tool call",
                   parameters=PATH, request=DecisionInputSerializer,
                   responses={200: StepDetailSerializer, 400: ErrorSerializer, **CONFLICT})
    def post(self, request, run_id, node_id):
        body = parse(DecisionInputSerializer, request.data)
        if "tool_call" in body:
            tool_call_decide(run_id=run_id, node_id=node_id, tool_call=body["tool_call"], approve=True,
                             arguments=body.get("arguments"), comment=body["comment"], actor=actor(request))
        else:
            step_approve(run_id=run_id, node_id=node_id, comment=body["comment"], actor=actor(request))
        return step_response(run_id, node_id)


class StepRejectApi(ApiView):
    permissions = {"post": CanOperate}

    @extend_schema(tags=TAG, operation_id="step_reject",
                   summary="Reject a step waiting for approval (it fails), or (with tool_call) an agent's tool call "
                           "(the comment goes back to the model as the tool's result)",
                   parameters=PATH, request=DecisionInputSerializer,
                   responses={200: StepDetailSerializer, 400: ErrorSerializer, **CONFLICT})
    def post(self, request, run_id, node_id):
        body = parse(DecisionInputSerializer, request.data)
        if "tool_call" in body:
            tool_call_decide(run_id=run_id, node_id=node_id, tool_call=body["tool_call"], approve=False,
                             arguments=body.get("arguments"), comment=body["comment"], actor=actor(request))
        else:
            step_reject(run_id=run_id, node_id=node_id, comment=body["comment"], actor=actor(request))
        return step_response(run_id, node_id)
