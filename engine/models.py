"""Weft's durable state. Models are data: fields, constraints, indexes, small properties.

Workflow logic lives in engine.services.scheduler (starting runs, operator actions), engine.core.outcomes
(what a step's outcome does to its run) and engine.worker (running steps); status changes go through the
compare-and-set functions of engine.core.transitions, never ``obj.status = X; obj.save()``.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.db.models import F, Lookup, Q
from django.db.models.fields.json import KeyTextTransform

from engine.ids import uuid7
from engine.states import Durability, RunStatus, StepStatus


@models.Field.register_lookup
class AnyOf(Lookup):
    """``column__any_of=<a queryset of one column>``: ``column = ANY(ARRAY(<its query>))``. The query runs once (an
    InitPlan) and the rows are found through the column's index whatever the tables' statistics say; as a join,
    a run's attempts (say) were read by scanning every attempt while the table was small, and a plan chosen
    from statistics can change as a table grows (tests/engine/test_seeded_plans.py)."""

    lookup_name = "any_of"

    def as_sql(self, compiler, connection):
        lhs, lhs_params = self.process_lhs(compiler, connection)
        rhs, rhs_params = self.process_rhs(compiler, connection)
        return f"{lhs} = ANY(ARRAY{rhs})", [*lhs_params, *rhs_params]


models.ForeignObject.register_lookup(AnyOf)  # a relation's lookups are its own, not every field's


class Workflow(models.Model):
    slug = models.SlugField(max_length=100, unique=True)
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True, default="")
    current_version = models.ForeignKey(
        "WorkflowVersion", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    archived = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)

    class Meta:
        ordering = ["slug"]

    def __str__(self) -> str:
        return self.slug


class WorkflowVersion(models.Model):
    """Immutable: editing a workflow makes a new version; a run pins the version it started on."""

    workflow = models.ForeignKey(Workflow, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField()
    definition = models.JSONField()
    checksum = models.CharField(max_length=64)
    note = models.CharField(max_length=500, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["workflow", "number"], name="workflowversion_unique_number")]
        ordering = ["workflow", "-number"]

    def __str__(self) -> str:
        return f"{self.workflow_id} v{self.number}"


class Run(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)  # time-ordered: engine/ids.py
    workflow = models.ForeignKey(Workflow, on_delete=models.PROTECT, related_name="runs")
    version = models.ForeignKey(WorkflowVersion, on_delete=models.PROTECT, related_name="runs")
    status = models.CharField(max_length=16, choices=RunStatus.choices, default=RunStatus.PENDING)
    inputs = models.JSONField(default=dict)
    outputs = models.JSONField(null=True, blank=True)
    error = models.TextField(blank=True, default="")
    # NULL (not "") when absent, so the unique constraint ignores runs started without a key.
    idempotency_key = models.CharField(max_length=200, null=True, blank=True)  # noqa: DJ001
    request_hash = models.CharField(max_length=64, blank=True, default="")
    # Steps not yet in a terminal status: the run finishes when this reaches zero.
    unfinished_steps = models.IntegerField(default=0)
    last_seq = models.BigIntegerField(default=0)
    parent_step = models.ForeignKey(
        "StepRun", null=True, blank=True, on_delete=models.SET_NULL, related_name="child_runs"
    )
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    # How the run started: {"kind": one of TRIGGER_KINDS, ...}, with the user, schedule and fire time, webhook
    # delivery id or event id as the kind has them.
    trigger = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # The run's rendered concurrency key ("" for the whole workflow); NULL when its version has no concurrency
    # (engine.core.concurrency). A pending run with a key waits for a run of that key to finish.
    concurrency_key = models.CharField(max_length=200, null=True, blank=True)  # noqa: DJ001
    # How the workers' transactions on this run commit (engine.core.durability), decided at its start from its
    # version's definition and its queues' defaults, and never changed.
    durability = models.CharField(max_length=8, choices=Durability.choices, default=Durability.STRICT,
                                  db_default=Durability.STRICT)
    # Within a queue, a run's steps are claimed before those of runs with a lower priority (plus each node's own
    # priority), aged by WEFT_PRIORITY_AGING_S (engine.core.queues): decided at its start and never changed.
    priority = models.IntegerField(default=0, db_default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["workflow", "idempotency_key"],
                condition=Q(idempotency_key__isnull=False),
                name="run_unique_idempotency_key",
            )
        ]
        indexes = [
            models.Index(fields=["status", "-created_at"], name="run_status_created"),
            # A workflow's runs newest first; with what its analytics read of them, so that they read the index only.
            models.Index(fields=["workflow", "-created_at"], name="run_workflow_recent",
                         include=["status", "last_seq", "started_at", "finished_at", "id"]),
            models.Index(fields=["-created_at"], name="run_created"),
            models.Index(KeyTextTransform("kind", "trigger"), F("created_at").desc(), name="run_trigger_created"),
            # Retention deletes the oldest finished runs first; the run tally counts them by status from the index.
            models.Index(fields=["finished_at"], name="run_finished_status", condition=Q(finished_at__isnull=False),
                         include=["status"]),
            # The weft_runs gauge counts the unfinished runs without reading the finished ones.
            models.Index(fields=["status"], name="run_unfinished", condition=Q(finished_at__isnull=True)),
            # Run concurrency: the runs of a (workflow, key) running, and those waiting, oldest first.
            models.Index(fields=["workflow", "concurrency_key", "started_at"], name="run_concurrency_running",
                         condition=Q(status=RunStatus.RUNNING, concurrency_key__isnull=False)),
            models.Index(fields=["workflow", "concurrency_key", "created_at"], name="run_concurrency_waiting",
                         condition=Q(status=RunStatus.PENDING, concurrency_key__isnull=False)),
        ]
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"run {self.id} ({self.status})"

    @property
    def waiting(self) -> dict | None:
        return run_waiting(self.status, self.concurrency_key)


def run_waiting(status: str, concurrency_key: str | None) -> dict | None:
    """Why a run that has not started waits: for a run of its concurrency key to finish. None otherwise."""
    if status != RunStatus.PENDING or concurrency_key is None:
        return None
    of = f"of key {concurrency_key!r}" if concurrency_key else "of this workflow"
    return {"reason": "concurrency", "key": concurrency_key, "message": f"waiting for a run {of} to finish"}


class StepRun(models.Model):
    # No index of its own: steprun_unique_node (run, node_id) serves lookups by run.
    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="steps", db_index=False)
    # The node's id; for item i of a mapped node x, "x[i]" (engine.core.mapping).
    node_id = models.CharField(max_length=120)
    node_type = models.CharField(max_length=100)
    queue = models.CharField(max_length=100)
    status = models.CharField(max_length=16, choices=StepStatus.choices, default=StepStatus.PENDING)
    # Fencing token: the current attempt number. A worker's writes carry it and lose if it moved on.
    attempt = models.IntegerField(default=0)
    # Bumped by "rerun from here": idempotency keys change only when an operator asks for a fresh execution.
    generation = models.IntegerField(default=0)
    # Readiness counters (see engine.core.outcomes): upstream edges not yet finished, and their outcomes so far.
    remaining_upstream = models.IntegerField(default=0)
    upstream_succeeded = models.IntegerField(default=0)
    upstream_failed = models.IntegerField(default=0)
    upstream_skipped = models.IntegerField(default=0)
    output = models.JSONField(null=True, blank=True)
    error = models.TextField(blank=True, default="")
    waiting_reason = models.CharField(max_length=32, blank=True, default="")  # approval, sleep, in_doubt, ...
    waiting_detail = models.JSONField(null=True, blank=True)
    wake_at = models.DateTimeField(null=True, blank=True)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    worker = models.CharField(max_length=200, blank=True, default="")
    queued_at = models.DateTimeField(null=True, blank=True)
    broker_msg_id = models.BigIntegerField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # An item of a mapped node (engine.core.mapping): the node's own step, the item's index in the list its
    # for_each yielded, and the item ({{ item }} in its config). NULL on every other step.
    map_parent = models.ForeignKey("self", null=True, blank=True, on_delete=models.CASCADE, related_name="map_items",
                                   db_index=False)
    map_index = models.IntegerField(null=True, blank=True)
    map_item = models.JSONField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["run", "node_id"], name="steprun_unique_node"),
            # Serves a mapped node's items in order (paging, the next to queue); steps that are no item have no
            # entry, so starting a run writes none.
            models.UniqueConstraint(fields=["map_parent", "map_index"], condition=Q(map_parent__isnull=False),
                                    name="steprun_unique_map_item"),
        ]
        indexes = [
            models.Index(fields=["lease_expires_at"], condition=Q(status="running"), name="steprun_running_lease"),
            models.Index(fields=["next_attempt_at"], condition=Q(status="retry_wait"), name="steprun_retry_due"),
            models.Index(fields=["wake_at"], condition=Q(status="waiting"), name="steprun_wake_due"),
            models.Index(fields=["queue", "queued_at"], condition=Q(status="queued"), name="steprun_queued"),
            # A worker continuing through a run's queued steps on its queue (a fan-out's siblings).
            models.Index(fields=["run", "queue", "id"], condition=Q(status="queued"), name="steprun_run_queued"),
            # The queue page's steps finished in the last minute. Unfinished steps (every step of a new run) have
            # no entry, so starting a run writes none.
            models.Index(fields=["queue", "finished_at"], condition=Q(finished_at__isnull=False),
                         name="steprun_queue_finished"),
        ]

    def __str__(self) -> str:
        return f"{self.run_id}/{self.node_id} ({self.status})"


class Attempt(models.Model):
    class Outcome(models.TextChoices):
        RUNNING = "running"
        SUCCEEDED = "succeeded"
        FAILED = "failed"
        LOST = "lost"  # the worker died or lost its lease
        TIMEOUT = "timeout"
        CANCELLED = "cancelled"
        WAITING = "waiting"  # the node asked to wait (approval, sleep) or is in doubt

    # No index of its own: attempt_unique_number (step, number) serves lookups by step.
    step = models.ForeignKey(StepRun, on_delete=models.CASCADE, related_name="attempts", db_index=False)
    number = models.IntegerField()
    queued_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    worker = models.CharField(max_length=200, blank=True, default="")
    outcome = models.CharField(max_length=16, choices=Outcome.choices, default=Outcome.RUNNING)
    error = models.TextField(blank=True, default="")
    error_type = models.CharField(max_length=200, blank=True, default="")
    traceback = models.TextField(blank=True, default="")
    logs = models.JSONField(default=list, blank=True)
    metrics = models.JSONField(default=dict, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["step", "number"], name="attempt_unique_number")]
        ordering = ["step", "number"]

    def __str__(self) -> str:
        return f"{self.step_id}#{self.number} ({self.outcome})"


class Event(models.Model):
    """Append-only, gapless per run: the live stream, the audit trail and reconnect catch-up."""

    # No index of its own: event_unique_seq (run, seq) serves lookups by run.
    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="events", db_index=False)
    seq = models.BigIntegerField()
    type = models.CharField(max_length=64)
    node_id = models.CharField(max_length=120, blank=True, default="")
    payload = models.JSONField(default=dict, blank=True)
    actor = models.CharField(max_length=150, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["run", "seq"], name="event_unique_seq")]
        ordering = ["run", "seq"]

    def __str__(self) -> str:
        return f"{self.run_id}#{self.seq} {self.type}"


class JournalEntry(models.Model):
    """One durable sub-step (model call, tool call) inside a step run, keyed for idempotency."""

    class Status(models.TextChoices):
        STARTED = "started"
        SUCCEEDED = "succeeded"
        FAILED = "failed"

    # No index of its own: journal_unique_key (step, key) serves lookups by step.
    step = models.ForeignKey(StepRun, on_delete=models.CASCADE, related_name="journal", db_index=False)
    key = models.CharField(max_length=200)
    position = models.IntegerField()
    status = models.CharField(max_length=16, choices=Status.choices)
    safe_to_repeat = models.BooleanField(default=False)
    attempt = models.IntegerField()
    result = models.JSONField(null=True, blank=True)
    error = models.TextField(blank=True, default="")
    error_type = models.CharField(max_length=200, blank=True, default="")
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["step", "key"], name="journal_unique_key")]
        ordering = ["step", "position"]

    def __str__(self) -> str:
        return f"{self.step_id}:{self.key} ({self.status})"


class WorkerProcess(models.Model):
    """A live ``runworkers`` cluster, refreshed every few seconds: who serves which queue."""

    host = models.CharField(max_length=200)
    pid = models.IntegerField()
    queue = models.CharField(max_length=100)
    workers = models.IntegerField(default=0)
    started_at = models.DateTimeField()
    last_seen = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["host", "pid", "queue"], name="workerprocess_unique")]
        indexes = [models.Index(fields=["queue", "last_seen"], name="workerprocess_queue_seen")]

    def __str__(self) -> str:
        return f"{self.queue}@{self.host}:{self.pid}"


class Credential(models.Model):
    """A named secret (API key, token) that node configs refer to by name. Encrypted at rest; see
    engine/integrations/credentials.py."""

    class Kind(models.TextChoices):
        API_KEY = "api_key"  # sent as "Authorization: Bearer <secret>" (LLM providers)
        BEARER = "bearer"  # "Authorization: Bearer <secret>"
        BASIC = "basic"  # secret is "user:password"; sent as HTTP basic auth
        HEADER = "header"  # secret is "Header-Name: value"

    name = models.CharField(max_length=100, unique=True)
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.API_KEY)
    # A Fernet token (see engine.integrations.credentials); never the plain secret.
    secret_encrypted = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)
    rotated_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    # Host patterns (the syntax of WEFT_HTTP_ALLOWED_HOSTS) the secret may be sent to; empty: nowhere yet.
    allowed_hosts = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["name"]
        # Naming a credential in a workflow node (designing alone does not grant it; see api/permissions.py).
        permissions = [("use_credential", "Can use credentials in workflow nodes")]

    def __str__(self) -> str:
        return f"{self.name} ({self.kind})"


class Schedule(models.Model):
    """Starts runs of its workflow's current version at fire times: a cron expression or a fixed interval in
    an IANA time zone (engine/core/firetimes.py), fired by every ``runworkers`` process's schedule loop
    (engine/worker/schedules.py); a ScheduleFire row per (kind, fire time) makes each fire happen once."""

    class Overlap(models.TextChoices):  # Temporal's overlap policies
        SKIP = "skip"
        BUFFER_ONE = "buffer_one"
        BUFFER_ALL = "buffer_all"
        CANCEL_OTHER = "cancel_other"
        ALLOW_ALL = "allow_all"

    workflow = models.ForeignKey(Workflow, on_delete=models.CASCADE, related_name="schedules")
    cron = models.CharField(max_length=200, null=True, blank=True)  # noqa: DJ001 (null: an interval schedule)
    interval_s = models.PositiveIntegerField(null=True, blank=True)
    timezone = models.CharField(max_length=64, default="UTC")
    inputs = models.JSONField(default=dict, blank=True)  # a template; ``scheduled_for`` is available
    overlap = models.CharField(max_length=16, choices=Overlap.choices, default=Overlap.SKIP)
    catchup_window_s = models.PositiveIntegerField(default=60)
    paused = models.BooleanField(default=False)
    start_at = models.DateTimeField(null=True, blank=True)
    end_at = models.DateTimeField(null=True, blank=True)
    jitter_s = models.PositiveIntegerField(default=0)
    # The next fire time not yet handled (None: the schedule has ended), and when to act on it (plus jitter).
    next_fire_at = models.DateTimeField(null=True, blank=True)
    due_at = models.DateTimeField(null=True, blank=True)
    # Fire times older than catchup_window_s when they were found, skipped and counted.
    missed_count = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)

    class Meta:
        ordering = ["workflow", "id"]
        indexes = [models.Index(fields=["due_at"], condition=Q(paused=False, due_at__isnull=False),
                                name="schedule_due")]

    def __str__(self) -> str:
        return f"schedule {self.pk} of {self.workflow_id}: {self.cron or f'every {self.interval_s} s'}"


class ScheduleFire(models.Model):
    """One fire of a schedule: (schedule, kind, fire time) is unique, so each is handled once, whichever
    process gets there first. A buffered fire starts its run when the schedule's previous run finishes."""

    class Kind(models.TextChoices):
        SCHEDULED = "scheduled"
        BACKFILL = "backfill"
        MANUAL = "manual"

    class Status(models.TextChoices):
        STARTED = "started"  # its run started
        BUFFERED = "buffered"  # waiting for the schedule's running run to finish
        SKIPPED = "skipped"  # by the overlap policy
        FAILED = "failed"  # its run could not start (the inputs template failed, the workflow is archived, ...)

    schedule = models.ForeignKey(Schedule, on_delete=models.CASCADE, related_name="fires", db_index=False)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    fire_time = models.DateTimeField()
    status = models.CharField(max_length=16, choices=Status.choices)
    overlap = models.CharField(max_length=16, choices=Schedule.Overlap.choices)
    run = models.ForeignKey(Run, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    error = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["schedule", "kind", "fire_time"], name="schedulefire_once")]
        indexes = [
            models.Index(fields=["schedule", "-fire_time"], name="schedulefire_recent"),
            models.Index(fields=["schedule", "fire_time"], condition=Q(status="buffered"),
                         name="schedulefire_buffered"),
            models.Index(fields=["schedule"], condition=Q(status="started"), name="schedulefire_started"),
        ]

    def __str__(self) -> str:
        return f"{self.schedule_id} {self.kind} {self.fire_time.isoformat()} ({self.status})"
class Limit(models.Model):
    """A named throttle that nodes take (``"limits": [{"name": ...}]``): at most ``concurrency`` steps
    running at once and/or ``rate_limit`` starts per ``rate_period_s`` (plus ``rate_burst``), per key.
    Enforced by engine.core.limits."""

    name = models.CharField(max_length=100, unique=True)
    concurrency = models.PositiveIntegerField(null=True, blank=True)
    rate_limit = models.PositiveIntegerField(null=True, blank=True)
    rate_period_s = models.FloatField(null=True, blank=True)
    rate_burst = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class LimitBucket(models.Model):
    """One key's share of a limit: its rate's next free start (GCRA's theoretical arrival time), the time a
    429's Retry-After pauses it until, and when it was last served (round robin across keys)."""

    limit = models.ForeignKey(Limit, on_delete=models.CASCADE, related_name="buckets", db_index=False)
    key = models.CharField(max_length=200, blank=True, default="")
    tat = models.DateTimeField(null=True, blank=True)
    paused_until = models.DateTimeField(null=True, blank=True)
    served_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["limit", "key"], name="limitbucket_unique_key")]

    def __str__(self) -> str:
        return f"{self.limit_id}[{self.key}]"


class LimitClaim(models.Model):
    """A queued step's want (``held`` false) or hold (true) of one bucket, for one attempt. A hold counts
    against the bucket's concurrency only while its step is queued or running at that attempt, so every way
    a step leaves running releases it."""

    step = models.ForeignKey(StepRun, on_delete=models.CASCADE, related_name="+", db_index=False)
    attempt = models.PositiveIntegerField()
    bucket = models.ForeignKey(LimitBucket, on_delete=models.CASCADE, related_name="claims", db_index=False)
    held = models.BooleanField(default=False)
    priority = models.IntegerField(default=0)
    since = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["step", "bucket"], name="limitclaim_unique_bucket")]
        indexes = [models.Index(fields=["bucket", "held"], name="limitclaim_bucket_held")]

    def __str__(self) -> str:
        return f"{self.step_id}#{self.attempt} {'holds' if self.held else 'wants'} {self.bucket_id}"
class WebhookEndpoint(models.Model):
    """A public URL (``/hooks/<id>/``) whose signed deliveries start runs of a workflow; see
    engine/services/webhooks.py. The signing secret is stored encrypted, like a credential's."""

    class MappingLanguage(models.TextChoices):
        TEMPLATE = "template"
        JMESPATH = "jmespath"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    workflow = models.ForeignKey(Workflow, on_delete=models.CASCADE, related_name="webhooks")
    description = models.CharField(max_length=200, blank=True, default="")
    enabled = models.BooleanField(default=True)
    # A Fernet token of the "whsec_..." secret (engine.integrations.credentials); never the plain secret.
    secret_encrypted = models.TextField()
    # None: the body is the run inputs. Otherwise a template (any JSON) or a JMESPath expression (a string),
    # over {"body", "headers"}.
    mapping = models.JSONField(null=True, blank=True)
    mapping_language = models.CharField(max_length=16, choices=MappingLanguage.choices,
                                        default=MappingLanguage.TEMPLATE)
    # The header naming the delivery (a provider's event id); empty: the Standard Webhooks "webhook-id".
    delivery_id_header = models.CharField(max_length=100, blank=True, default="")
    # Token bucket, kept in the row so it holds across processes: rate_per_minute tokens a minute, up to
    # rate_burst at once.
    rate_per_minute = models.PositiveIntegerField(default=600)
    rate_burst = models.PositiveIntegerField(default=60)
    bucket_tokens = models.FloatField(default=60.0)
    bucket_refilled_at = models.DateTimeField(auto_now_add=True)
    created_at = models.DateTimeField(auto_now_add=True)
    rotated_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)

    class Meta:
        ordering = ["workflow", "created_at"]

    def __str__(self) -> str:
        return f"webhook {self.id} ({self.workflow_id})"


class WebhookDelivery(models.Model):
    """One request to a webhook endpoint, accepted or refused: what the UI's "last deliveries" show."""

    class Outcome(models.TextChoices):
        ACCEPTED = "accepted"  # a run started
        DUPLICATE = "duplicate"  # a redelivery: the run its first delivery started
        BAD_SIGNATURE = "bad_signature"
        INVALID = "invalid"  # the body, the mapping or the inputs
        TOO_LARGE = "too_large"
        RATE_LIMITED = "rate_limited"
        REFUSED = "refused"  # the workflow cannot start a run (archived, no version)

    endpoint = models.ForeignKey(WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries")
    delivery_id = models.CharField(max_length=200, blank=True, default="")
    received_at = models.DateTimeField(auto_now_add=True)
    outcome = models.CharField(max_length=16, choices=Outcome.choices)
    status_code = models.PositiveSmallIntegerField()
    run = models.ForeignKey(Run, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    error = models.TextField(blank=True, default="")

    class Meta:
        indexes = [models.Index(fields=["endpoint", "-received_at"], name="webhookdelivery_recent")]
        ordering = ["-received_at"]

    def __str__(self) -> str:
        return f"{self.endpoint_id} {self.delivery_id} {self.outcome}"


class EventTrigger(models.Model):
    """A workflow starts a run for each event of this name whose filter (if any) is true."""

    class FilterLanguage(models.TextChoices):
        TEMPLATE = "template"
        JMESPATH = "jmespath"

    workflow = models.ForeignKey(Workflow, on_delete=models.CASCADE, related_name="event_triggers")
    name = models.CharField(max_length=200)
    filter = models.TextField(blank=True, default="")
    filter_language = models.CharField(max_length=16, choices=FilterLanguage.choices,
                                       default=FilterLanguage.TEMPLATE)
    # The run inputs: None, the event's payload; otherwise a template over {"payload", "name", "key", "id"}.
    inputs = models.JSONField(null=True, blank=True)
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)

    class Meta:
        indexes = [models.Index(fields=["name"], name="eventtrigger_name")]
        ordering = ["workflow", "name", "id"]

    def __str__(self) -> str:
        return f"{self.workflow_id} on {self.name}"


class OutsideEvent(models.Model):
    """An event sent to ``POST /api/events/``, kept for WEFT_EVENT_RETENTION_S so a step that begins to wait
    for it after it arrived still receives it. Its id makes a resend a no-op."""

    event_id = models.CharField(max_length=200, unique=True)
    name = models.CharField(max_length=200)
    key = models.CharField(max_length=500, blank=True, default="")
    payload = models.JSONField(null=True, blank=True)
    received_at = models.DateTimeField(auto_now_add=True)
    sender = models.CharField(max_length=150, blank=True, default="")
    # What it did: {"runs": [...], "woken": [...]}, the answer a resend gets again.
    result = models.JSONField(default=dict, blank=True)

    class Meta:
        indexes = [models.Index(fields=["name", "key", "received_at"], name="outsideevent_match")]

    def __str__(self) -> str:
        return f"{self.name}:{self.key} ({self.event_id})"


class EventDelivery(models.Model):
    """An outside event given to a waiting ``wait_for_event`` step: at most one per step attempt."""

    event = models.ForeignKey(OutsideEvent, on_delete=models.CASCADE, related_name="deliveries")
    step = models.ForeignKey(StepRun, on_delete=models.CASCADE, related_name="+")
    attempt = models.IntegerField()
    delivered_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["step", "attempt"], name="eventdelivery_unique_step")]

    def __str__(self) -> str:
        return f"{self.event_id} -> {self.step_id}#{self.attempt}"


class AnalyticsDay(models.Model):
    """A workflow's analytics figures from its runs created on one UTC day (engine.services.analytics): the
    attempts per node and per day they were queued, and the model calls and their cost. Kept once every run of
    that day has finished, and used while the day's runs are still what they were then: as many, with the same
    sum of their last event numbers (any transition adds events; a prune or a deletion removes runs), and while
    the prices are those it was priced with."""

    workflow = models.ForeignKey(Workflow, on_delete=models.CASCADE, related_name="+")
    day = models.DateField()
    runs = models.IntegerField()
    seq_sum = models.BigIntegerField()
    figures = models.JSONField()
    computed_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["workflow", "day"], name="analyticsday_workflow_day")]

    def __str__(self) -> str:
        return f"analytics of workflow {self.workflow_id} on {self.day}"


class RunTally(models.Model):
    """How many runs of a terminal status had finished before ``as_of`` (engine.observability.run_tally): with
    the runs unfinished or finished since, it gives the ``weft_runs`` gauge without counting every run."""

    status = models.CharField(max_length=16, primary_key=True)
    runs = models.BigIntegerField()
    as_of = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.runs} runs {self.status} before {self.as_of}"
