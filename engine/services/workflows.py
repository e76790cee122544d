"""Workflows and their immutable versions: validate, save, export."""

from __future__ import annotations

from django.conf import settings
from django.db import transaction
from django.db.models import Max

from engine.core.definition_diff import definition_diff
from engine.core.graph import definition_checksum
from engine.core.security import OutputInvalid, json_for_storage
from engine.core.versions import graph_cache_put, graph_load
from engine.exceptions import AlreadyExists, GraphInvalid, InvalidTransition, Issue, NotFound
from engine.models import Workflow, WorkflowVersion
from engine.nodes.validation import config_issues
from engine.services.limits import limits_issues

# Issues after which a node's config is not checked further (its hooks expect a config matching its schema).
_CONFIG_UNCHECKED = frozenset({"schema", "config_invalid", "duplicate_node"})

# Slugs that collide with API paths under /api/workflows/.
RESERVED_SLUGS = frozenset({"validate", "schema", "import", "export", "new"})


def graph_validate(definition: dict, *, actor=None):
    """Validate a definition to be saved by ``actor`` (None: a trusted caller): as a graph, and each node's
    config (templates, credentials the actor may use, hosts), which reads the database. Raises GraphInvalid
    with every issue: the config and limit checks run even when the graph checks failed (on the nodes whose
    config matched its schema)."""
    try:
        graph = graph_load(definition)
    except GraphInvalid as exc:
        if exc.partial is None:
            raise
        broken = {i.node for i in exc.errors if i.node and i.code in _CONFIG_UNCHECKED}
        raise GraphInvalid(exc.errors + config_issues(exc.partial, actor=actor, skip=broken)
                           + limits_issues(exc.partial)) from None
    issues = config_issues(graph, actor=actor) + limits_issues(graph)
    if issues:
        raise GraphInvalid(issues)
    return graph


def workflow_save(*, definition: dict, actor=None, note: str = "", create_only: bool = False,
                  ) -> tuple[Workflow, WorkflowVersion, bool]:
    """Create the workflow named by ``definition["slug"]`` or add a new version to it.

    Invalid definitions raise GraphInvalid with every error and write nothing. Saving a
    definition identical to the current version makes no new version. Returns
    (workflow, version, created_new_version).
    """
    _check_size(definition)
    graph = graph_validate(definition, actor=actor)  # raises GraphInvalid before anything touches the database
    if definition["slug"] in RESERVED_SLUGS:
        raise GraphInvalid([Issue("reserved_slug", f"slug `{definition['slug']}` is reserved; choose another",
                                  path="slug")])
    checksum = definition_checksum(definition)
    user = actor if getattr(actor, "pk", None) else None
    with transaction.atomic():
        workflow, made = Workflow.objects.select_for_update().get_or_create(
            slug=definition["slug"],
            defaults={"name": definition["name"], "description": definition.get("description", ""),
                      "created_by": user},
        )
        if create_only and not made:
            raise AlreadyExists(f"workflow {workflow.slug!r} already exists; save a new version of it instead")
        current = workflow.current_version
        if current is not None and current.checksum == checksum:
            return workflow, current, False
        number = (workflow.versions.aggregate(n=Max("number"))["n"] or 0) + 1
        version = WorkflowVersion.objects.create(
            workflow=workflow, number=number, definition=definition, checksum=checksum, note=note, created_by=user
        )
        transaction.on_commit(lambda: graph_cache_put(version.pk, graph))
        workflow.current_version = version
        workflow.name = definition["name"]
        workflow.description = definition.get("description", "")
        workflow.archived = False
        workflow.save(update_fields=["current_version", "name", "description", "archived", "updated_at"])
    return workflow, version, True


def _check_size(definition) -> None:
    """GraphInvalid when the definition is larger than WEFT_MAX_DEFINITION_BYTES (or holds what JSON cannot)."""
    try:
        size = len(json_for_storage(definition, what="the workflow definition").encode("utf-8"))
    except (OutputInvalid, TypeError) as exc:
        raise GraphInvalid([Issue("not_json", str(exc))]) from None
    limit = settings.WEFT_MAX_DEFINITION_BYTES
    if size > limit:
        raise GraphInvalid([Issue("definition_too_large", f"the definition is {size} bytes of JSON; the limit "
                                                          f"(WEFT_MAX_DEFINITION_BYTES) is {limit}")])


def workflow_get(slug: str) -> Workflow:
    try:
        return Workflow.objects.select_related("current_version").get(slug=slug)
    except Workflow.DoesNotExist:
        raise NotFound(f"workflow {slug!r} does not exist") from None


def workflow_export(slug: str, *, version: int | None = None) -> dict:
    workflow = workflow_get(slug)
    if version is None:
        if workflow.current_version is None:
            raise InvalidTransition(f"workflow {slug!r} has no saved version")
        return workflow.current_version.definition
    try:
        return workflow.versions.get(number=version).definition
    except WorkflowVersion.DoesNotExist:
        raise NotFound(f"workflow {slug!r} has no version {version}") from None


def workflow_archive(slug: str) -> Workflow:
    workflow = workflow_get(slug)
    Workflow.objects.filter(pk=workflow.pk).update(archived=True)
    workflow.archived = True
    return workflow


def workflow_version_compare(*, slug: str, number: int, definition: dict) -> dict:
    """What ``definition`` (the editor's, saved or not) changes from version ``number`` of workflow ``slug``,
    field by field (engine.core.definition_diff)."""
    workflow = workflow_get(slug)
    try:
        version = workflow.versions.get(number=number)
    except WorkflowVersion.DoesNotExist:
        raise NotFound(f"workflow {slug!r} has no version {number}") from None
    return {"version": number, **definition_diff(version.definition, definition)}
