"""Schedules: create (under a workflow), list, read, change, delete; pause, resume, trigger now, backfill."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.response import Response

from api.converters import SLUG
from api.permissions import CanDesign, CanOperate
from api.schedule_serializers import (
    BackfillInputSerializer,
    BackfillResultSerializer,
    ScheduleInputSerializer,
    ScheduleListQuerySerializer,
    ScheduleSerializer,
)
from api.serializers import ErrorSerializer, RunSerializer
from api.views.base import ApiView, actor, parse, parse_query
from api.views.runs import run_response
from engine.services.schedules import (
    schedule_backfill,
    schedule_create,
    schedule_delete,
    schedule_get,
    schedule_list,
    schedule_next_fire_times,
    schedule_pause,
    schedule_recent_fires,
    schedule_resume,
    schedule_trigger,
    schedule_update,
)

TAG = ["schedules"]
ID = OpenApiParameter("schedule_id", int, OpenApiParameter.PATH, description="schedule id")
ERRORS = {400: ErrorSerializer, 404: ErrorSerializer, 409: ErrorSerializer}


def schedule_data(schedule) -> dict:
    data = {f: getattr(schedule, f) for f in ("id", "workflow", "cron", "interval_s", "timezone", "inputs", "overlap",
                                               "catchup_window_s", "paused", "start_at", "end_at", "jitter_s",
                                               "missed_count", "created_at", "updated_at")}
    data["next_fire_times"] = schedule_next_fire_times(schedule)
    data["recent_fires"] = schedule_recent_fires(schedule)
    return ScheduleSerializer(data).data


class WorkflowSchedulesApi(ApiView):
    permissions = {"post": CanDesign}

    @extend_schema(tags=TAG, operation_id="schedule_create", summary="Schedule runs of a workflow",
                   parameters=[SLUG], request=ScheduleInputSerializer, responses={201: ScheduleSerializer, **ERRORS})
    def post(self, request, slug):
        body = parse(ScheduleInputSerializer, request.data)
        return Response(schedule_data(schedule_create(workflow=slug, actor=actor(request), **body)), status=201)


class ScheduleCollectionApi(ApiView):
    @extend_schema(tags=TAG, operation_id="schedule_list", summary="Every schedule (or one workflow's)",
                   parameters=[ScheduleListQuerySerializer], responses={200: ScheduleSerializer(many=True),
                                                                        400: ErrorSerializer})
    def get(self, request):
        query = parse_query(ScheduleListQuerySerializer, request.query_params)
        return Response([schedule_data(s) for s in schedule_list(workflow=query.get("workflow"))])


class ScheduleDetailApi(ApiView):
    permissions = {"patch": CanDesign, "delete": CanDesign}

    @extend_schema(tags=TAG, operation_id="schedule_get", summary="A schedule with its next fire times",
                   parameters=[ID], responses={200: ScheduleSerializer, 404: ErrorSerializer})
    def get(self, request, schedule_id):
        return Response(schedule_data(schedule_get(schedule_id)))

    @extend_schema(tags=TAG, operation_id="schedule_update", summary="Change a schedule (the fields given)",
                   parameters=[ID], request=ScheduleInputSerializer, responses={200: ScheduleSerializer, **ERRORS})
    def patch(self, request, schedule_id):
        body = parse(ScheduleInputSerializer, request.data)
        return Response(schedule_data(schedule_update(schedule_id=schedule_id, **body)))

    @extend_schema(tags=TAG, operation_id="schedule_delete", summary="Delete a schedule (its runs stay)",
                   parameters=[ID], responses={204: None, 404: ErrorSerializer})
    def delete(self, request, schedule_id):
        schedule_delete(schedule_id=schedule_id)
        return Response(status=204)


class SchedulePauseApi(ApiView):
    permissions = {"post": CanOperate}

    @extend_schema(tags=TAG, operation_id="schedule_pause", summary="Pause a schedule", request=None,
                   parameters=[ID], responses={200: ScheduleSerializer, 404: ErrorSerializer})
    def post(self, request, schedule_id):
        return Response(schedule_data(schedule_pause(schedule_id=schedule_id)))


class ScheduleResumeApi(ApiView):
    permissions = {"post": CanOperate}

    @extend_schema(tags=TAG, operation_id="schedule_resume", summary="Resume a schedule from now", request=None,
                   parameters=[ID], responses={200: ScheduleSerializer, 404: ErrorSerializer})
    def post(self, request, schedule_id):
        return Response(schedule_data(schedule_resume(schedule_id=schedule_id)))


class ScheduleTriggerApi(ApiView):
    permissions = {"post": CanOperate}

    @extend_schema(tags=TAG, operation_id="schedule_trigger", summary="Start a run of the schedule now",
                   request=None, parameters=[ID], responses={201: RunSerializer, **ERRORS})
    def post(self, request, schedule_id):
        run = schedule_trigger(schedule_id=schedule_id, actor=actor(request))
        return run_response(run.pk, status=201)


class ScheduleBackfillApi(ApiView):
    permissions = {"post": CanOperate}

    @extend_schema(tags=TAG, operation_id="schedule_backfill", summary="Fire every fire time of a past range",
                   parameters=[ID], request=BackfillInputSerializer,
                   responses={200: BackfillResultSerializer, **ERRORS})
    def post(self, request, schedule_id):
        body = parse(BackfillInputSerializer, request.data)
        return Response(BackfillResultSerializer(schedule_backfill(schedule_id=schedule_id, **body)).data)
