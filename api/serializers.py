"""Explicit input and output serializers. Inputs validate request shape only; the engine
validates meaning (definitions, run inputs, states)."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from api.flat import FlatSerializer
from engine.core.graph import PRIORITY_MAX, PRIORITY_MIN
from engine.integrations.credentials import MAX_ALLOWED_HOSTS
from engine.integrations.credentials import NAME_RE as CREDENTIAL_NAME_RE
from engine.integrations.llm_providers import estimate_cost
from engine.models import Credential
from engine.states import TRIGGER_KINDS, Durability, RunStatus, StepStatus

# -- errors ---------------------------------------------------------------------------------------


class ErrorInnerSerializer(serializers.Serializer):
    code = serializers.CharField()
    message = serializers.CharField()
    details = serializers.ListField(child=serializers.JSONField())


class ErrorSerializer(serializers.Serializer):
    """Every 4xx and 5xx body."""

    error = ErrorInnerSerializer()


# -- workflows ------------------------------------------------------------------------------------


class IssueSerializer(serializers.Serializer):
    """One problem (or warning) in a workflow definition, located by node id, edge or JSON path."""

    code = serializers.CharField()
    message = serializers.CharField()
    node = serializers.CharField(required=False)
    edge = serializers.CharField(required=False, help_text="source->target")
    path = serializers.CharField(required=False)


# The OpenAPI component api.schema builds from engine.core.graph.DEFINITION_SCHEMA.
DEFINITION_REF = {"$ref": "#/components/schemas/WorkflowDefinition"}


@extend_schema_field(DEFINITION_REF)
class DefinitionField(serializers.DictField):
    """A workflow definition: an object here; the engine checks it against DEFINITION_SCHEMA and the graph's
    meaning (400 graph_invalid), so the schema names DEFINITION_SCHEMA rather than a copy of it."""


@extend_schema_field({"type": ["object", "array", "string", "number", "boolean"]})
class JsonValueField(serializers.JSONField):
    """Any JSON value; null only with allow_null=True (the schema then says null too)."""


class DefinitionInputSerializer(serializers.Serializer):
    definition = DefinitionField(help_text="A workflow definition; see GET /api/workflow-schema/")
    note = serializers.CharField(required=False, allow_blank=True, default="", max_length=500)


class ValidateInputSerializer(serializers.Serializer):
    definition = JsonValueField(help_text="A workflow definition (see GET /api/workflow-schema/); any value but "
                                           "null, so that every problem is reported as a validation result")


class ValidateResultSerializer(serializers.Serializer):
    valid = serializers.BooleanField()
    errors = IssueSerializer(many=True)
    warnings = IssueSerializer(many=True)


class VersionSummarySerializer(serializers.Serializer):
    number = serializers.IntegerField()
    checksum = serializers.CharField()
    note = serializers.CharField(allow_blank=True)
    created_at = serializers.DateTimeField()
    created_by = serializers.CharField(source="created_by.username", allow_null=True)


class VersionSerializer(VersionSummarySerializer):
    definition = serializers.DictField()


class RunBriefSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    status = serializers.ChoiceField(choices=RunStatus.choices)
    created_at = serializers.DateTimeField()


class WorkflowListItemSerializer(serializers.Serializer):
    slug = serializers.CharField()
    name = serializers.CharField()
    description = serializers.CharField(allow_blank=True)
    archived = serializers.BooleanField()
    version = serializers.IntegerField(source="current_version.number", allow_null=True)
    updated_at = serializers.DateTimeField()
    runs_total = serializers.IntegerField()
    last_run_status = serializers.ChoiceField(choices=RunStatus.choices, allow_null=True)


class RunCountsSerializer(serializers.Serializer):
    pending = serializers.IntegerField()
    running = serializers.IntegerField()
    succeeded = serializers.IntegerField()
    failed = serializers.IntegerField()
    cancelled = serializers.IntegerField()


class WorkflowSerializer(serializers.Serializer):
    slug = serializers.CharField()
    name = serializers.CharField()
    description = serializers.CharField(allow_blank=True)
    archived = serializers.BooleanField()
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()
    current_version = VersionSerializer(allow_null=True)
    run_counts = RunCountsSerializer()
    last_run = RunBriefSerializer(allow_null=True)
    warnings = IssueSerializer(many=True)


class WorkflowSavedSerializer(WorkflowSerializer):
    new_version = serializers.BooleanField(help_text="false when the definition equals the current version")


# -- pagination -----------------------------------------------------------------------------------

PAGE_SIZE = 50
MAX_PAGE_SIZE = 200


class PageSizeQuerySerializer(serializers.Serializer):
    page_size = serializers.IntegerField(required=False, min_value=1, max_value=MAX_PAGE_SIZE,
                                         help_text=f"results per page (default {PAGE_SIZE})")


class PageQuerySerializer(PageSizeQuerySerializer):
    page = serializers.IntegerField(required=False, min_value=1, help_text="page number, from 1")


class CursorQuerySerializer(PageSizeQuerySerializer):
    cursor = serializers.CharField(required=False, allow_blank=True, trim_whitespace=False,
                                   help_text="the cursor of a `next` or `previous` link")


class WorkflowListQuerySerializer(serializers.Serializer):
    q = serializers.CharField(required=False, allow_blank=True, help_text="search slug, name and description")
    archived = serializers.BooleanField(required=False, default=False, help_text="include archived workflows")


class ExportQuerySerializer(serializers.Serializer):
    version = serializers.IntegerField(required=False, min_value=1, max_value=2**31 - 1,
                                       help_text="default: the current version")


# -- runs and steps -------------------------------------------------------------------------------


class RunStartInputSerializer(serializers.Serializer):
    inputs = serializers.DictField(required=False, default=dict, help_text="must match the workflow's inputs schema")
    priority = serializers.IntegerField(
        required=False, min_value=PRIORITY_MIN, max_value=PRIORITY_MAX,
        help_text="within a queue, steps of higher-priority runs are claimed first (aged, so lower ones are never "
                  "starved); absent: the definition's priority (0 by default)")


class RunListQuerySerializer(serializers.Serializer):
    workflow = serializers.CharField(required=False, allow_blank=True, trim_whitespace=False,
                                     help_text="workflow slug (empty: every workflow)")
    status = serializers.ChoiceField(choices=RunStatus.choices, required=False, allow_blank=True,
                                     help_text="empty: every status")
    started_after = serializers.DateTimeField(required=False, help_text="runs started at or after (ISO 8601)")
    started_before = serializers.DateTimeField(required=False, help_text="runs started before (ISO 8601)")
    trigger = serializers.ChoiceField(choices=TRIGGER_KINDS, required=False, allow_blank=True,
                                      help_text="how the runs started (empty: any way)")


class RunWaitingSerializer(serializers.Serializer):
    reason = serializers.ChoiceField(choices=["concurrency"])
    key = serializers.CharField(allow_blank=True, help_text="the run's concurrency key (empty: the whole workflow)")
    message = serializers.CharField(help_text="waiting for a run of key 'u1' to finish")


class RunSummarySerializer(FlatSerializer):
    id = serializers.UUIDField()
    workflow = serializers.CharField(source="workflow.slug")
    version = serializers.IntegerField(source="version.number")
    status = serializers.ChoiceField(choices=RunStatus.choices)
    error = serializers.CharField(allow_blank=True)
    concurrency_key = serializers.CharField(
        allow_null=True, allow_blank=True,
        help_text="the run's rendered concurrency key (empty: one group for the workflow); null when its version "
                  "has no run concurrency")
    waiting = RunWaitingSerializer(allow_null=True, help_text="why a pending run has not started; null otherwise")
    idempotency_key = serializers.CharField(allow_null=True)
    priority = serializers.IntegerField(help_text="the run's priority in its steps' queues")
    durability = serializers.ChoiceField(choices=Durability.choices,
                                         help_text="how its workers' transactions commit (docs/reliability.md)")
    created_by = serializers.CharField(source="created_by.username", allow_null=True)
    trigger = serializers.DictField(help_text='how the run started: {"kind": "manual" | "api" | "schedule" | '
                                              '"webhook" | "event" | "subworkflow", ...}')
    created_at = serializers.DateTimeField()
    started_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)


def span_s(start, end) -> float | None:
    if start is None or end is None:
        return None
    return round(max((end - start).total_seconds(), 0.0), 6)


class MapSummarySerializer(FlatSerializer):
    items = serializers.IntegerField(help_text="how many items the node's for_each yielded")
    counts = serializers.DictField(child=serializers.IntegerField(), help_text="items by status")
    failed = serializers.ListField(child=serializers.IntegerField(),
                                   help_text="once the node finished: the indices of the items that failed")
    max_parallel = serializers.IntegerField(allow_null=True)
    on_item_failure = serializers.ChoiceField(choices=["fail", "continue"])


class StepSerializer(FlatSerializer):
    node_id = serializers.CharField(help_text="the node's id; an item of a mapped node x is x[index]")
    node_type = serializers.CharField()
    queue = serializers.CharField()
    status = serializers.ChoiceField(choices=StepStatus.choices)
    attempt = serializers.IntegerField(help_text="current attempt number (0: never queued)")
    attempts_count = serializers.IntegerField(help_text="attempts that started")
    waiting_reason = serializers.CharField(allow_blank=True)
    waiting_detail = JsonValueField(allow_null=True)
    output = JsonValueField(allow_null=True)
    error = serializers.CharField(allow_blank=True)
    worker = serializers.CharField(allow_blank=True)
    queued_at = serializers.DateTimeField(allow_null=True)
    started_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)
    next_attempt_at = serializers.DateTimeField(allow_null=True)
    wake_at = serializers.DateTimeField(allow_null=True)
    duration_s = serializers.SerializerMethodField()
    map_index = serializers.IntegerField(allow_null=True, help_text="an item of a mapped node: its index")
    map = serializers.SerializerMethodField(help_text="a mapped node's step: its items (list them with "
                                                      "GET .../steps/{node_id}/items/)")

    # A run's detail writes its steps from rows (api.step_rows), with the same output.
    def get_duration_s(self, step) -> float | None:
        return span_s(step.started_at, step.finished_at)

    @extend_schema_field(MapSummarySerializer(allow_null=True))
    def get_map(self, step) -> dict | None:
        summary = getattr(step, "map_summary", None)
        return None if summary is None else MapSummarySerializer(summary).data


class ParentStepSerializer(FlatSerializer):
    run = serializers.UUIDField(source="run_id")
    node_id = serializers.CharField()


class SpendFiguresSerializer(serializers.Serializer):
    calls = serializers.IntegerField(help_text="finished model calls")
    prompt_tokens = serializers.IntegerField()
    completion_tokens = serializers.IntegerField()
    total_tokens = serializers.IntegerField()
    cost_usd = serializers.FloatField(help_text="estimated from WEFT_LLM_PRICES; models without a price count 0")


class ModelSpendSerializer(SpendFiguresSerializer):
    model = serializers.CharField(allow_blank=True)


class BudgetSerializer(serializers.Serializer):
    max_cost_usd = serializers.FloatField(required=False)
    max_tokens = serializers.IntegerField(required=False)


class SpendSerializer(SpendFiguresSerializer):
    by_model = ModelSpendSerializer(many=True)


class RunSpendSerializer(SpendSerializer):
    budget = BudgetSerializer(allow_null=True, help_text="the workflow definition's budget, if it has one")


class RunSerializer(RunSummarySerializer):
    inputs = serializers.DictField()
    outputs = JsonValueField(allow_null=True)
    last_seq = serializers.IntegerField()
    unfinished_steps = serializers.IntegerField()
    parent_step = ParentStepSerializer(allow_null=True)
    steps = StepSerializer(many=True)
    spend = RunSpendSerializer(help_text="the run's model calls, from its journal: totals and by model")


class LogLineSerializer(FlatSerializer):
    t = serializers.FloatField(help_text="unix time")
    level = serializers.CharField()
    msg = serializers.CharField(allow_blank=True)


class AttemptSerializer(FlatSerializer):
    number = serializers.IntegerField()
    outcome = serializers.CharField()
    worker = serializers.CharField(allow_blank=True)
    queued_at = serializers.DateTimeField(allow_null=True)
    started_at = serializers.DateTimeField()
    finished_at = serializers.DateTimeField(allow_null=True)
    duration_s = serializers.SerializerMethodField()
    error = serializers.CharField(allow_blank=True)
    error_type = serializers.CharField(allow_blank=True)
    traceback = serializers.CharField(allow_blank=True)
    logs = LogLineSerializer(many=True)
    metrics = serializers.DictField()

    def get_duration_s(self, attempt) -> float | None:
        return span_s(attempt.started_at, attempt.finished_at)


class JournalEntrySerializer(FlatSerializer):
    key = serializers.CharField()
    position = serializers.IntegerField()
    status = serializers.CharField()
    attempt = serializers.IntegerField()
    safe_to_repeat = serializers.BooleanField()
    result = JsonValueField(allow_null=True)
    error = serializers.CharField(allow_blank=True)
    error_type = serializers.CharField(allow_blank=True)
    started_at = serializers.DateTimeField()
    finished_at = serializers.DateTimeField(allow_null=True)
    cost_usd = serializers.SerializerMethodField(help_text="a model call's estimated cost, priced as the run's "
                                                           "spend is (WEFT_LLM_PRICES); null for other entries and "
                                                           "models without a price")

    def get_cost_usd(self, entry) -> float | None:
        result = entry.result if isinstance(entry.result, dict) else {}
        usage = result.get("usage")
        if entry.status != "succeeded" or not isinstance(usage, dict):
            return None
        return estimate_cost(str(result.get("model") or ""), int(usage.get("prompt_tokens") or 0),
                             int(usage.get("completion_tokens") or 0))


class StepDetailSerializer(StepSerializer):
    run = serializers.UUIDField(source="run_id")
    generation = serializers.IntegerField()
    heartbeat_at = serializers.DateTimeField(allow_null=True)
    lease_expires_at = serializers.DateTimeField(allow_null=True)
    attempts = AttemptSerializer(many=True, source="attempt_rows")
    journal = JournalEntrySerializer(many=True, source="journal_rows")


class MapItemSerializer(StepSerializer):
    item = JsonValueField(allow_null=True, source="map_item", help_text="the item ({{ item }} in its config)")
    attempts = AttemptSerializer(many=True, source="attempt_rows")


class MapItemsQuerySerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=StepStatus.choices, required=False, help_text="only items in this status")


class CommentInputSerializer(serializers.Serializer):
    comment = serializers.CharField(required=False, allow_blank=True, default="", max_length=2000)


class DecisionInputSerializer(serializers.Serializer):
    comment = serializers.CharField(required=False, allow_blank=True, default="", max_length=2000)
    tool_call = serializers.CharField(required=False, max_length=200,
                                      help_text="an agent's tool call waiting for approval (its id, as in the step's "
                                                "waiting_detail.tool_call.id); without it, the approval step itself")
    arguments = serializers.DictField(required=False,
                                      help_text="approve: the tool call's arguments as edited by the approver")

    def validate(self, attrs):
        if "arguments" in attrs and "tool_call" not in attrs:
            raise serializers.ValidationError({"arguments": "arguments are only for a tool call (give tool_call)"})
        return attrs


class CompleteInputSerializer(serializers.Serializer):
    output = JsonValueField(required=False, allow_null=True, default=None,
                            help_text="the step's output, as if it had produced it")


class RerunResultSerializer(serializers.Serializer):
    rerun = serializers.ListField(child=serializers.CharField(), help_text="node ids that will run again")
    step = StepDetailSerializer()


class RepeatInputSerializer(serializers.Serializer):
    version = serializers.ChoiceField(
        choices=[("run", "run"), ("current", "current")], required=False, default="run",
        help_text="run: the version the run started on (or last moved to); current: the workflow's current "
                  "version, to which the run moves when its nodes and edges are the same (409 otherwise)")


class RetryFailedResultSerializer(serializers.Serializer):
    retried = serializers.ListField(child=serializers.CharField(), help_text="the failed steps, in topological order")


class FieldChangeSerializer(serializers.Serializer):
    field = serializers.CharField(help_text="a dotted path inside the node's definition, e.g. config.url")
    before = JsonValueField(allow_null=True)
    after = JsonValueField(allow_null=True)


class NodeChangeSerializer(serializers.Serializer):
    node_id = serializers.CharField()
    change = serializers.ChoiceField(choices=[("added", "added"), ("removed", "removed"), ("changed", "changed")])
    fields = FieldChangeSerializer(many=True)


class RunVersionCompareSerializer(serializers.Serializer):
    run_version = serializers.IntegerField()
    current_version = serializers.IntegerField()
    movable = serializers.BooleanField(help_text="whether a retry or rerun can move the run to the current version")
    problems = serializers.ListField(child=serializers.CharField(), help_text="why it cannot")
    changes = NodeChangeSerializer(many=True, help_text="every node's changes from the run's version to the current")


class EdgeChangeSerializer(serializers.Serializer):
    edge = serializers.CharField(help_text="source->target")
    change = serializers.ChoiceField(choices=[("added", "added"), ("removed", "removed"), ("changed", "changed")])
    fields = FieldChangeSerializer(many=True, help_text="its condition and branch")


class VersionCompareInputSerializer(serializers.Serializer):
    definition = serializers.DictField(help_text="the definition to compare with the version: the editor's, saved or "
                                                 "not, so any object, valid or not, is compared as it is")


class VersionCompareSerializer(serializers.Serializer):
    version = serializers.IntegerField()
    workflow = FieldChangeSerializer(many=True, help_text="the changed fields outside nodes and edges: name, "
                                                          "inputs schema, concurrency, priority, durability, ...")
    nodes = NodeChangeSerializer(many=True, help_text="every node's changes, field by field")
    edges = EdgeChangeSerializer(many=True)


class RerunPreviewSerializer(serializers.Serializer):
    node_ids = serializers.ListField(child=serializers.CharField(), help_text="in topological order")


# -- events and timeline --------------------------------------------------------------------------


class EventsQuerySerializer(serializers.Serializer):
    after = serializers.IntegerField(required=False, default=0, min_value=0, max_value=2**63 - 1,
                                     help_text="return events with seq > after")
    limit = serializers.IntegerField(required=False, default=100, min_value=1, max_value=1000)


class EventSerializer(FlatSerializer):
    seq = serializers.IntegerField()
    type = serializers.CharField()
    node_id = serializers.CharField(allow_blank=True)
    payload = serializers.DictField()
    actor = serializers.CharField(allow_blank=True)
    created_at = serializers.DateTimeField()


class EventsPageSerializer(serializers.Serializer):
    events = EventSerializer(many=True)
    last_seq = serializers.IntegerField(help_text="the run's latest event seq")
    has_more = serializers.BooleanField(help_text="more events follow the last one returned")


class TimelineAttemptSerializer(FlatSerializer):
    number = serializers.IntegerField()
    outcome = serializers.CharField()
    worker = serializers.CharField(allow_blank=True)
    queued_at = serializers.DateTimeField(allow_null=True)
    started_at = serializers.DateTimeField()
    finished_at = serializers.DateTimeField(allow_null=True)
    duration_s = serializers.SerializerMethodField()

    def get_duration_s(self, attempt) -> float | None:
        return span_s(attempt.started_at, attempt.finished_at)


class TimelineStepSerializer(FlatSerializer):
    node_id = serializers.CharField(source="step.node_id")
    node_type = serializers.CharField(source="step.node_type")
    queue = serializers.CharField(source="step.queue")
    status = serializers.ChoiceField(source="step.status", choices=StepStatus.choices)
    duration_s = serializers.FloatField(allow_null=True, help_text="seconds spent executing, all attempts")
    attempts = TimelineAttemptSerializer(many=True)


class TimelineSerializer(FlatSerializer):
    run = serializers.UUIDField()
    status = serializers.ChoiceField(choices=RunStatus.choices)
    started_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)
    steps = TimelineStepSerializer(many=True)
    critical_path = serializers.ListField(child=serializers.CharField(),
                                          help_text="node ids of the chain of steps whose durations add up most")


# -- catalog --------------------------------------------------------------------------------------


class NodeTypeSerializer(serializers.Serializer):
    name = serializers.CharField()
    label = serializers.CharField()
    description = serializers.CharField(allow_blank=True)
    config_schema = serializers.DictField(help_text="JSON Schema of the node's config")
    default_queue = serializers.CharField()
    inline = serializers.BooleanField()
    outputs = serializers.DictField(help_text="hint of the output's shape")
    untestable = serializers.SerializerMethodField(help_text="why the editor cannot test a node of this type on its "
                                                             "own (it waits inside a run, or starts one); null: it can")

    @extend_schema_field({"type": ["string", "null"]})
    def get_untestable(self, obj) -> str | None:
        return getattr(obj.cls, "untestable", None)


class QueueStatsSerializer(serializers.Serializer):
    name = serializers.CharField()
    clusters_online = serializers.IntegerField()
    workers_online = serializers.IntegerField()
    depth = serializers.IntegerField(help_text="steps queued")
    running = serializers.IntegerField()
    oldest_queued_s = serializers.FloatField(allow_null=True)
    finished_last_minute = serializers.IntegerField()
    workers = serializers.IntegerField(help_text="configured workers per cluster")
    timeout = serializers.IntegerField(help_text="configured timeout (s)")


# -- credentials ----------------------------------------------------------------------------------


class StrictCharField(serializers.CharField):
    """Text that must arrive as a JSON string: a number or a boolean is refused, not turned into text."""

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


@extend_schema_field({"type": "string", "pattern": CREDENTIAL_NAME_RE.pattern, "maxLength": 100})
class CredentialNameField(StrictCharField):
    """A credential's name; the pattern is checked by engine.integrations.credentials (credential_invalid)."""


def _host_patterns(**kwargs) -> serializers.ListField:
    return serializers.ListField(
        child=StrictCharField(max_length=253), max_length=MAX_ALLOWED_HOSTS,
        help_text="host patterns the secret may be sent to, in the syntax of WEFT_HTTP_ALLOWED_HOSTS: "
                  "'api.example.com', '*.example.com', an address or a network ('10.0.0.0/8'), '*' (any "
                  "public host); empty: the credential is sent nowhere and nodes cannot use it", **kwargs)


class CredentialSerializer(serializers.Serializer):
    name = serializers.CharField()
    kind = serializers.ChoiceField(choices=Credential.Kind.choices)
    allowed_hosts = _host_patterns()
    created_at = serializers.DateTimeField()
    rotated_at = serializers.DateTimeField(allow_null=True)


class CredentialCreateSerializer(serializers.Serializer):
    name = CredentialNameField(max_length=100)
    kind = serializers.ChoiceField(choices=Credential.Kind.choices, required=False, default=Credential.Kind.API_KEY)
    secret = StrictCharField(write_only=True, trim_whitespace=False, max_length=16384)
    allowed_hosts = _host_patterns(required=False, default=list)


class CredentialRotateSerializer(serializers.Serializer):
    secret = StrictCharField(write_only=True, trim_whitespace=False, max_length=16384)


class CredentialUpdateSerializer(serializers.Serializer):
    """A PATCH: the fields given are replaced, the others kept."""

    allowed_hosts = _host_patterns(required=False)


# -- limits ---------------------------------------------------------------------------------------

LIMIT_NAME_PATTERN = "^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$"


@extend_schema_field({"type": "string", "pattern": LIMIT_NAME_PATTERN, "maxLength": 100})
class LimitNameField(StrictCharField):
    """A limit's name; the pattern is checked by engine.services.limits (limit_invalid)."""


class StrictIntegerField(serializers.IntegerField):
    """A whole number that must arrive as a JSON number: "3" or true is refused."""

    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictFloatField(serializers.FloatField):
    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, (int, float)):
            self.fail("invalid")
        return super().to_internal_value(data)


class LimitRateSerializer(serializers.Serializer):
    limit = StrictIntegerField(min_value=1, max_value=1_000_000_000, help_text="starts allowed per period")
    period_s = StrictFloatField(min_value=0.001, max_value=86400.0 * 366, help_text="the period, in seconds")
    burst = StrictIntegerField(min_value=0, max_value=1_000_000_000, required=False, default=0,
                               help_text="starts allowed at once above the even spacing")


class LimitBucketSerializer(serializers.Serializer):
    key = serializers.CharField(allow_blank=True, help_text="the key's value ('' for a limit without a key)")
    in_use = serializers.IntegerField(help_text="slots held by queued or running steps")
    waiting = serializers.IntegerField(help_text="steps queued and waiting for this key")
    tokens_left = serializers.IntegerField(allow_null=True, help_text="starts the rate allows now (null: no rate)")
    paused_until = serializers.DateTimeField(allow_null=True, help_text="a 429's Retry-After holds it until then")


class LimitSerializer(serializers.Serializer):
    name = serializers.CharField()
    concurrency = serializers.IntegerField(allow_null=True)
    rate = LimitRateSerializer(allow_null=True)
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()
    buckets = LimitBucketSerializer(many=True)


class LimitCreateSerializer(serializers.Serializer):
    name = LimitNameField(max_length=100)
    concurrency = StrictIntegerField(min_value=1, max_value=1_000_000, allow_null=True, required=False,
                                     default=None, help_text="steps running at once per key")
    rate = LimitRateSerializer(allow_null=True, required=False, default=None)


class LimitUpdateSerializer(serializers.Serializer):
    """A PATCH: the fields given are replaced (null removes one), the others kept."""

    concurrency = StrictIntegerField(min_value=1, max_value=1_000_000, allow_null=True, required=False)
    rate = LimitRateSerializer(allow_null=True, required=False)
