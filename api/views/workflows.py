"""Workflows and their versions: list, create, get, update, archive, validate, export."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import exceptions as drf
from rest_framework.response import Response

from api.converters import SLUG
from api.permissions import CanDesign
from api.serializers import (
    DefinitionInputSerializer,
    ErrorSerializer,
    ExportQuerySerializer,
    ValidateInputSerializer,
    ValidateResultSerializer,
    VersionCompareInputSerializer,
    VersionCompareSerializer,
    VersionSerializer,
    VersionSummarySerializer,
    WorkflowListItemSerializer,
    WorkflowListQuerySerializer,
    WorkflowSavedSerializer,
    WorkflowSerializer,
)
from api.views.base import ApiView, NumberedPages, actor, parse, parse_query
from engine.core.graph import DEFINITION_SCHEMA
from engine.core.versions import version_graph
from engine.exceptions import GraphInvalid
from engine.models import Workflow
from engine.services import queries
from engine.services.workflows import (
    graph_validate,
    workflow_archive,
    workflow_export,
    workflow_get,
    workflow_save,
    workflow_version_compare,
)

TAG = ["workflows"]


def workflow_data(workflow: Workflow, **extra) -> dict:
    version = workflow.current_version
    try:
        warnings = [w.as_dict() for w in version_graph(version).warnings] if version else []
    except GraphInvalid as exc:  # the registry changed since the version was saved
        warnings = exc.details
    return {
        "slug": workflow.slug,
        "name": workflow.name,
        "description": workflow.description,
        "archived": workflow.archived,
        "created_at": workflow.created_at,
        "updated_at": workflow.updated_at,
        "current_version": version,
        "run_counts": queries.workflow_run_counts(workflow),
        "last_run": queries.workflow_last_run(workflow),
        "warnings": warnings,
        **extra,
    }


def _saved(workflow: Workflow, *, new_version: bool, status: int) -> Response:
    workflow = workflow_get(workflow.slug)  # fresh timestamps and version
    return Response(WorkflowSavedSerializer(workflow_data(workflow, new_version=new_version)).data, status=status)


def _require_slug(definition: dict, slug: str) -> None:
    if definition.get("slug") != slug:
        raise drf.ValidationError({"definition": {"slug": [f"must be {slug!r}, the workflow being updated"]}})


class WorkflowCollectionApi(ApiView):
    pagination_class = NumberedPages
    permissions = {"post": CanDesign}

    @extend_schema(
        tags=TAG, operation_id="workflow_list", summary="List workflows",
        parameters=[WorkflowListQuerySerializer, NumberedPages.query_serializer],
        responses=WorkflowListItemSerializer(many=True),
    )
    def get(self, request):
        query = parse_query(WorkflowListQuerySerializer, request.query_params)
        qs = queries.workflows_search(q=query.get("q", ""), include_archived=query["archived"])
        return self.paginate(qs, WorkflowListItemSerializer)

    @extend_schema(
        tags=TAG, operation_id="workflow_create", summary="Create a workflow from a definition",
        request=DefinitionInputSerializer,
        responses={201: WorkflowSavedSerializer, 400: ErrorSerializer, 409: ErrorSerializer},
    )
    def post(self, request):
        body = parse(DefinitionInputSerializer, request.data)
        definition = body["definition"]
        workflow, _, created = workflow_save(definition=definition, actor=actor(request), note=body["note"],
                                             create_only=True)
        return _saved(workflow, new_version=created, status=201)


class WorkflowValidateApi(ApiView):
    @extend_schema(
        tags=TAG, operation_id="workflow_validate", summary="Validate a definition without saving it",
        request=ValidateInputSerializer, responses={200: ValidateResultSerializer, 400: ErrorSerializer},
    )
    def post(self, request):
        body = parse(ValidateInputSerializer, request.data)
        try:
            graph = graph_validate(body["definition"], actor=actor(request))
        except GraphInvalid as exc:
            result = {"valid": False, "errors": exc.details, "warnings": []}
        else:
            result = {"valid": True, "errors": [], "warnings": [w.as_dict() for w in graph.warnings]}
        return Response(ValidateResultSerializer(result).data)


class WorkflowDetailApi(ApiView):
    permissions = {"put": CanDesign, "delete": CanDesign}

    @extend_schema(tags=TAG, operation_id="workflow_get", summary="Get a workflow and its current version",
                   parameters=[SLUG], responses=WorkflowSerializer)
    def get(self, request, slug):
        return Response(WorkflowSerializer(workflow_data(workflow_get(slug))).data)

    @extend_schema(
        tags=TAG, operation_id="workflow_update", summary="Save a new version of a workflow",
        description="Identical definitions make no new version (new_version: false). Restores an archived workflow.",
        parameters=[SLUG], request=DefinitionInputSerializer,
        responses={200: WorkflowSavedSerializer, 400: ErrorSerializer},
    )
    def put(self, request, slug):
        workflow_get(slug)
        body = parse(DefinitionInputSerializer, request.data)
        _require_slug(body["definition"], slug)
        workflow, _, created = workflow_save(definition=body["definition"], actor=actor(request), note=body["note"])
        return _saved(workflow, new_version=created, status=200)

    @extend_schema(tags=TAG, operation_id="workflow_archive", summary="Archive a workflow",
                   description="Runs keep their version; an archived workflow starts no new runs.",
                   parameters=[SLUG], responses={204: None})
    def delete(self, request, slug):
        workflow_archive(slug)
        return Response(status=204)


class WorkflowVersionsApi(ApiView):
    permissions = {"post": CanDesign}

    @extend_schema(tags=TAG, operation_id="workflow_versions", summary="List a workflow's versions, newest first",
                   parameters=[SLUG], responses=VersionSummarySerializer(many=True))
    def get(self, request, slug):
        versions = queries.workflow_versions(workflow_get(slug))
        return Response(VersionSummarySerializer(versions, many=True).data)

    @extend_schema(
        tags=TAG, operation_id="workflow_version_create", summary="Save a new version of a workflow",
        description="Same as PUT /api/workflows/{slug}/: 201 with a new version, 200 when the definition is unchanged.",
        parameters=[SLUG], request=DefinitionInputSerializer,
        responses={200: WorkflowSavedSerializer, 201: WorkflowSavedSerializer, 400: ErrorSerializer},
    )
    def post(self, request, slug):
        workflow_get(slug)
        body = parse(DefinitionInputSerializer, request.data)
        _require_slug(body["definition"], slug)
        workflow, _, created = workflow_save(definition=body["definition"], actor=actor(request), note=body["note"])
        return _saved(workflow, new_version=created, status=201 if created else 200)


class WorkflowVersionApi(ApiView):
    @extend_schema(
        tags=TAG, operation_id="workflow_version_get", summary="Get one version of a workflow",
        parameters=[SLUG, OpenApiParameter("number", OpenApiTypes.INT, OpenApiParameter.PATH)],
        responses=VersionSerializer,
    )
    def get(self, request, slug, number):
        version = queries.workflow_version_get(workflow_get(slug), number)
        return Response(VersionSerializer(version).data)


class WorkflowVersionCompareApi(ApiView):
    @extend_schema(
        tags=TAG, operation_id="workflow_version_compare", summary="Compare a definition with a saved version",
        description="What the given definition changes from the version, field by field: nodes, edges and the "
                    "rest of the definition. Nothing is saved.",
        parameters=[SLUG, OpenApiParameter("number", OpenApiTypes.INT, OpenApiParameter.PATH)],
        request=VersionCompareInputSerializer, responses={200: VersionCompareSerializer, 404: ErrorSerializer},
    )
    def post(self, request, slug, number):
        body = parse(VersionCompareInputSerializer, request.data)
        changes = workflow_version_compare(slug=slug, number=number, definition=body["definition"])
        return Response(VersionCompareSerializer(changes).data)


class WorkflowExportApi(ApiView):
    @extend_schema(
        tags=TAG, operation_id="workflow_export", summary="Export a workflow's definition",
        parameters=[SLUG, ExportQuerySerializer],
        responses={200: OpenApiResponse(OpenApiTypes.OBJECT, description="the definition JSON"),
                   409: ErrorSerializer},
    )
    def get(self, request, slug):
        query = parse_query(ExportQuerySerializer, request.query_params)
        definition = workflow_export(slug, version=query.get("version"))
        response = Response(definition)
        response["Content-Disposition"] = f'attachment; filename="{slug}.json"'
        return response


class WorkflowSchemaApi(ApiView):
    @extend_schema(tags=TAG, operation_id="workflow_schema", summary="JSON Schema of workflow definitions",
                   responses={200: OpenApiResponse(OpenApiTypes.OBJECT, description="JSON Schema (draft 2020-12)")})
    def get(self, request):
        return Response(DEFINITION_SCHEMA)
