"""Runs: start, list, get, cancel; their event stream and timeline."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import exceptions as drf
from rest_framework.response import Response

from api.converters import SLUG
from api.permissions import CanOperate
from api.serializers import (
    ErrorSerializer,
    EventsPageSerializer,
    EventsQuerySerializer,
    RepeatInputSerializer,
    RetryFailedResultSerializer,
    RunListQuerySerializer,
    RunSerializer,
    RunStartInputSerializer,
    RunSummarySerializer,
    RunVersionCompareSerializer,
    TimelineSerializer,
)
from api.step_rows import steps_json
from api.views.base import ApiView, CursorPages, actor, parse, parse_query
from engine.services import queries
from engine.services.run_versions import run_version_compare
from engine.services.scheduler import run_cancel, run_retry_failed, run_start
from engine.services.spend import run_spend
from engine.services.workflows import workflow_get

TAG = ["runs"]
RUN_ID = OpenApiParameter("run_id", OpenApiTypes.UUID, OpenApiParameter.PATH, description="run id")
IDEMPOTENCY_KEY = OpenApiParameter(
    "Idempotency-Key", {"type": "string", "minLength": 1, "maxLength": 200, "pattern": r"\S"}, OpenApiParameter.HEADER,
    required=False,
    description="Same key and same body: the run already started (200). Same key, different body: 409. "
                "At most 200 characters, not all of them blank.",
)
MAX_KEY = 200


class RunPagination(CursorPages):
    ordering = "-created_at"


class _RunFields(RunSerializer):
    steps = None  # written from rows by api.step_rows


_RUN_KEYS = tuple(RunSerializer().fields)


def run_response(run_id, *, status: int = 200) -> Response:
    """A run with its steps (RunSerializer's output): the steps written by ``steps_json``, embedded as JSON text
    (api.rawjson.RawJsonRenderer writes the response)."""
    run = queries.run_get(run_id)
    steps = steps_json(queries.run_steps(run))
    data = _RunFields(_RunView(run)).data
    return Response({key: steps if key == "steps" else data[key] for key in _RUN_KEYS}, status=status)


class _RunView:
    """A run with its spend, for RunSerializer."""

    def __init__(self, run):
        self._run = run
        self.spend = run_spend(run)

    def __getattr__(self, name):
        return getattr(self._run, name)


class WorkflowRunStartApi(ApiView):
    permissions = {"post": CanOperate}

    @extend_schema(
        tags=TAG, operation_id="run_start", summary="Start a run of a workflow's current version",
        description="201 with the new run: `running`; under the workflow's run concurrency, `pending` with "
                    "`waiting` when it waits for a run of its key to finish (strategy queue), or `cancelled` with the "
                    "reason when it was not started (strategy cancel_newest). 400 when the inputs fail the input "
                    "schema or the concurrency key fails to render (`details[].path`).",
        parameters=[SLUG, IDEMPOTENCY_KEY],
        request=RunStartInputSerializer,
        responses={201: RunSerializer, 200: RunSerializer, 400: ErrorSerializer, 409: ErrorSerializer},
    )
    def post(self, request, slug):
        workflow = workflow_get(slug)
        body = parse(RunStartInputSerializer, request.data)
        key = request.headers.get("Idempotency-Key")
        if key is not None:
            key = key.strip()
            if not key or len(key) > MAX_KEY:
                raise drf.ValidationError({"Idempotency-Key": [f"must be 1-{MAX_KEY} characters"]})
        # A signed-in browser session is someone pressing Run in the web UI; a token is a program.
        kind = "api" if request.auth is not None else "manual"
        run, created = run_start(workflow=workflow, inputs=body["inputs"], idempotency_key=key,
                                 actor=actor(request), trigger={"kind": kind}, priority=body.get("priority"))
        return run_response(run.pk, status=201 if created else 200)


class RunListApi(ApiView):
    pagination_class = RunPagination
    @extend_schema(tags=TAG, operation_id="run_list", summary="List runs, newest first",
                   parameters=[RunListQuerySerializer, RunPagination.query_serializer],
                   responses=RunSummarySerializer(many=True))
    def get(self, request):
        query = parse_query(RunListQuerySerializer, request.query_params)
        qs = queries.runs_filter(**query)
        return self.paginate(qs, RunSummarySerializer)


class RunDetailApi(ApiView):
    @extend_schema(tags=TAG, operation_id="run_get", summary="Get a run with all its steps",
                   parameters=[RUN_ID], responses=RunSerializer)
    def get(self, request, run_id):
        return run_response(run_id)


class RunCancelApi(ApiView):
    permissions = {"post": CanOperate}

    @extend_schema(tags=TAG, operation_id="run_cancel", summary="Cancel a pending or running run",
                   parameters=[RUN_ID], request=None, responses={200: RunSerializer, 409: ErrorSerializer})
    def post(self, request, run_id):
        run_cancel(run_id=run_id, actor=actor(request))
        return run_response(run_id)


class RunRetryFailedApi(ApiView):
    permissions = {"post": CanOperate}

    @extend_schema(tags=TAG, operation_id="run_retry_failed", summary="Retry every failed step of a run",
                   description="One action: each failed step runs again as a new attempt and the steps it blocked "
                               "go back to pending (as a step's retry does). 409 when no step failed or the run "
                               "cannot move to the chosen version.",
                   parameters=[RUN_ID], request=RepeatInputSerializer,
                   responses={200: RetryFailedResultSerializer, 400: ErrorSerializer, 404: ErrorSerializer,
                              409: ErrorSerializer})
    def post(self, request, run_id):
        body = parse(RepeatInputSerializer, request.data)
        retried = run_retry_failed(run_id=run_id, actor=actor(request), version=body["version"])
        return Response(RetryFailedResultSerializer({"retried": retried}).data)


class RunVersionCompareApi(ApiView):
    @extend_schema(tags=TAG, operation_id="run_version_compare",
                   summary="The run's version against its workflow's current one",
                   description="Whether a retry or rerun with version=current can move the run there (the same "
                               "nodes and edges), why not, and every node's changes field by field.",
                   parameters=[RUN_ID], responses={200: RunVersionCompareSerializer, 404: ErrorSerializer})
    def get(self, request, run_id):
        return Response(RunVersionCompareSerializer(run_version_compare(run_id=run_id)).data)


class RunEventsApi(ApiView):
    @extend_schema(
        tags=TAG, operation_id="run_events", summary="A run's events after a sequence number",
        description="Gapless and ordered by seq: poll with after=<last seq seen> to catch up without missing "
                    "or repeating an event.",
        parameters=[RUN_ID, EventsQuerySerializer], responses=EventsPageSerializer,
    )
    def get(self, request, run_id):
        query = parse_query(EventsQuerySerializer, request.query_params)
        run = queries.run_get(run_id)
        events = queries.run_events(run, after=query["after"], limit=query["limit"])
        last = events[-1].seq if events else query["after"]
        data = {"events": events, "last_seq": run.last_seq,
                "has_more": last < run.last_seq}
        return Response(EventsPageSerializer(data).data)


class RunTimelineApi(ApiView):
    @extend_schema(
        tags=TAG, operation_id="run_timeline", summary="Per step, per attempt timings and the critical path",
        parameters=[RUN_ID], responses=TimelineSerializer,
    )
    def get(self, request, run_id):
        run = queries.run_get(run_id)
        steps, critical = queries.run_timeline(run)
        data = {"run": run.pk, "status": run.status, "started_at": run.started_at, "finished_at": run.finished_at,
                "steps": steps, "critical_path": critical}
        return Response(TimelineSerializer(data).data)
