"""Observability for the UI and scripts: search a run's captured logs; a workflow's run analytics."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.response import Response

from api.converters import SLUG, NodeIdConverter
from api.serializers import SpendSerializer
from api.views.base import ApiView, parse_query
from engine.observability.queries import MAX_LOG_LINES, run_logs_search
from engine.services import queries
from engine.services.analytics import workflow_analytics
from engine.services.workflows import workflow_get

RUN_ID = OpenApiParameter("run_id", OpenApiTypes.UUID, OpenApiParameter.PATH, description="run id")


class RunLogsQuerySerializer(serializers.Serializer):
    q = serializers.CharField(required=False, default="", allow_blank=True, max_length=200, trim_whitespace=False,
                              help_text="case-insensitive text the message contains")
    node = serializers.RegexField(f"^{NodeIdConverter.regex}$", required=False, default="", allow_blank=True,
                                  trim_whitespace=False, help_text="only this step's lines (empty: every step's)")
    attempt = serializers.IntegerField(required=False, default=None, min_value=1, max_value=2**31 - 1,
                                       help_text="only this attempt number")
    level = serializers.ChoiceField(required=False, default="", allow_blank=True,
                                    choices=["", "DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL", "PRINT"],
                                    help_text="only this level (PRINT: what the node printed)")
    limit = serializers.IntegerField(required=False, default=500, min_value=1, max_value=MAX_LOG_LINES)


class RunLogLineSerializer(serializers.Serializer):
    node_id = serializers.CharField()
    attempt = serializers.IntegerField()
    index = serializers.IntegerField(help_text="position in the attempt's captured logs")
    t = serializers.FloatField(allow_null=True, help_text="unix time")
    level = serializers.CharField(allow_blank=True)
    msg = serializers.CharField(allow_blank=True)


class RunLogsSerializer(serializers.Serializer):
    run = serializers.UUIDField()
    lines = RunLogLineSerializer(many=True)
    truncated = serializers.BooleanField(help_text="more lines matched than `limit`")


class AnalyticsQuerySerializer(serializers.Serializer):
    days = serializers.IntegerField(required=False, default=30, min_value=1, max_value=365,
                                    help_text="runs created in the last N days; per hour when N <= 2, else per day")


class DurationSerializer(serializers.Serializer):
    count = serializers.IntegerField(help_text="succeeded runs measured")
    p50 = serializers.FloatField(allow_null=True)
    p95 = serializers.FloatField(allow_null=True)
    mean = serializers.FloatField(allow_null=True)
    max = serializers.FloatField(allow_null=True)


class FailingNodeSerializer(serializers.Serializer):
    node_id = serializers.CharField()
    attempts = serializers.IntegerField()
    failed_attempts = serializers.IntegerField(help_text="attempts that failed, timed out or were lost")
    failed_steps = serializers.IntegerField(help_text="runs in which the step ended failed")
    top_error_type = serializers.CharField(allow_blank=True)


class SeriesPointSerializer(serializers.Serializer):
    at = serializers.DateTimeField(help_text="start of the hour or day")
    runs = serializers.IntegerField()
    failed_runs = serializers.IntegerField()
    attempts = serializers.IntegerField()
    retries = serializers.IntegerField(help_text="attempts after a step's first (retries and reruns)")
    failed_attempts = serializers.IntegerField()


class RunCountsByStatusSerializer(serializers.Serializer):
    pending = serializers.IntegerField()
    running = serializers.IntegerField()
    succeeded = serializers.IntegerField()
    failed = serializers.IntegerField()
    cancelled = serializers.IntegerField()


class AnalyticsSerializer(serializers.Serializer):
    workflow = serializers.CharField()
    days = serializers.IntegerField()
    since = serializers.DateTimeField()
    bucket = serializers.ChoiceField(choices=["hour", "day"])
    runs = RunCountsByStatusSerializer()
    runs_total = serializers.IntegerField()
    success_rate = serializers.FloatField(allow_null=True, help_text="succeeded / finished (succeeded, failed, "
                                                                     "cancelled); null when none finished")
    duration_s = DurationSerializer(help_text="wall-clock seconds of succeeded runs, start to finish")
    failing_nodes = FailingNodeSerializer(many=True, help_text="at most 10, most failed steps first")
    series = SeriesPointSerializer(many=True)
    spend = SpendSerializer(help_text="model calls of the runs in the period, from their journals: totals and by "
                                      "model")


class RunLogsApi(ApiView):
    @extend_schema(
        tags=["runs"], operation_id="run_logs", summary="Search the log lines captured from a run's steps",
        description="What nodes logged and printed, per attempt (at most WEFT_MAX_LOG_LINES per attempt, with a "
                    "note when more were dropped). Lines in the order written; attempts in the order they started.",
        parameters=[RUN_ID, RunLogsQuerySerializer], responses=RunLogsSerializer,
    )
    def get(self, request, run_id):
        query = parse_query(RunLogsQuerySerializer, request.query_params)
        run = queries.run_get(run_id)
        lines, truncated = run_logs_search(run, **query)
        return Response(RunLogsSerializer({"run": run.pk, "lines": lines, "truncated": truncated}).data)


class WorkflowAnalyticsApi(ApiView):
    @extend_schema(
        tags=["workflows"], operation_id="workflow_analytics",
        summary="Success rate, p50/p95 duration, most-failing nodes and retries over time",
        parameters=[SLUG, AnalyticsQuerySerializer], responses=AnalyticsSerializer,
    )
    def get(self, request, slug):
        query = parse_query(AnalyticsQuerySerializer, request.query_params)
        workflow = workflow_get(slug)
        analytics = workflow_analytics(workflow, days=query["days"])
        return Response(AnalyticsSerializer(analytics).data)
