"""Input and output serializers of the schedule endpoints. Inputs validate shape; engine.services.schedules
validates meaning (a cron expression, a time zone, the inputs template), answering 400 schedule_invalid."""

from __future__ import annotations

from rest_framework import serializers

from api.serializers import StrictCharField
from engine.core.firetimes import MAX_INTERVAL_S, OVERLAP_POLICIES
from engine.models import ScheduleFire
from engine.services.schedules import MAX_CATCHUP_WINDOW_S, MAX_JITTER_S


class StrictIntegerField(serializers.IntegerField):
    """An integer that must arrive as a JSON integer: not a string, a float or a boolean."""

    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictBooleanField(serializers.BooleanField):
    """true or false, not a string or a number."""

    def to_internal_value(self, data):
        if not isinstance(data, bool):
            self.fail("invalid", input=data)
        return data


class ScheduleInputSerializer(serializers.Serializer):
    """A new schedule, or (PATCH) the fields to change. Exactly one of ``cron`` and ``interval_s``."""

    cron = StrictCharField(required=False, allow_null=True, max_length=200,
                           help_text="5 fields, or 6 with seconds first, read in `timezone`")
    interval_s = StrictIntegerField(required=False, allow_null=True, min_value=1, max_value=MAX_INTERVAL_S,
                                    help_text="fire every this many seconds, from start_at (or creation)")
    timezone = StrictCharField(required=False, max_length=64, help_text="an IANA time zone (default UTC)")
    inputs = serializers.DictField(required=False, help_text="run inputs; strings may be templates using "
                                                             "{{ scheduled_for }}")
    overlap = serializers.ChoiceField(choices=OVERLAP_POLICIES, required=False,
                                      help_text="when the schedule's previous run is still going (default skip)")
    catchup_window_s = StrictIntegerField(required=False, min_value=0, max_value=MAX_CATCHUP_WINDOW_S,
                                          help_text="missed fire times younger than this are started (default 60)")
    paused = StrictBooleanField(required=False)
    start_at = serializers.DateTimeField(required=False, allow_null=True)
    end_at = serializers.DateTimeField(required=False, allow_null=True)
    jitter_s = StrictIntegerField(required=False, min_value=0, max_value=MAX_JITTER_S,
                                  help_text="each fire waits a random 0..jitter_s seconds")


class ScheduleFireSerializer(serializers.Serializer):
    fire_time = serializers.DateTimeField()
    kind = serializers.ChoiceField(choices=ScheduleFire.Kind.choices)
    status = serializers.ChoiceField(choices=ScheduleFire.Status.choices)
    run = serializers.UUIDField(source="run_id", allow_null=True)
    error = serializers.CharField(allow_blank=True)


class ScheduleSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    workflow = serializers.CharField(source="workflow.slug")
    cron = serializers.CharField(allow_null=True)
    interval_s = serializers.IntegerField(allow_null=True)
    timezone = serializers.CharField()
    inputs = serializers.DictField()
    overlap = serializers.ChoiceField(choices=OVERLAP_POLICIES)
    catchup_window_s = serializers.IntegerField()
    paused = serializers.BooleanField()
    start_at = serializers.DateTimeField(allow_null=True)
    end_at = serializers.DateTimeField(allow_null=True)
    jitter_s = serializers.IntegerField()
    next_fire_times = serializers.ListField(child=serializers.DateTimeField(),
                                            help_text="the next five fire times (empty: the schedule has ended)")
    missed_count = serializers.IntegerField(help_text="fire times skipped because they were older than "
                                                      "catchup_window_s when found")
    recent_fires = ScheduleFireSerializer(many=True, help_text="the last five fires")
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()


class ScheduleListQuerySerializer(serializers.Serializer):
    workflow = StrictCharField(required=False, max_length=100, help_text="only this workflow's schedules (slug)")


class BackfillInputSerializer(serializers.Serializer):
    start = serializers.DateTimeField()
    end = serializers.DateTimeField(help_text="the last moment included")
    overlap = serializers.ChoiceField(choices=OVERLAP_POLICIES, required=False, default="buffer_all")


class BackfillResultSerializer(serializers.Serializer):
    fire_times = serializers.IntegerField(help_text="fire times in the range")
    started = serializers.IntegerField()
    buffered = serializers.IntegerField(help_text="to start one after another as the schedule's runs finish")
    skipped = serializers.IntegerField(help_text="by the overlap policy")
    failed = serializers.IntegerField(help_text="whose run could not start")
    already = serializers.IntegerField(help_text="backfilled before: not fired again")
