"""OpenAPI schema post-processing, each rule in one place: the error responses every operation can give; the
workflow definition's schema (built from engine.core.graph.DEFINITION_SCHEMA); no NUL character in any request
string; links from the operations that create or list things to those that use them."""

from __future__ import annotations

import copy

from engine.core.graph import DEFINITION_SCHEMA

ERROR_REF = {"$ref": "#/components/schemas/Error"}

COMMON = {
    "400": "Invalid request (query parameters, body or headers)",
    "401": "Not authenticated",
    "403": "Authenticated but the role does not allow this",
    "404": "No such object (or page)",
    "405": "Method not allowed",
    "406": "Cannot produce the requested media type",
}
WITH_BODY = {
    "413": "Request body larger than WEFT_MAX_BODY_BYTES",
    "415": "Unsupported media type",
}
SERVER = {"500": "Internal error (logged; no traceback is returned)"}


def add_error_responses(result, generator, request, public):
    """drf-spectacular POSTPROCESSING_HOOK: document the JSON error shape for every status an operation may give."""
    schemas = result.setdefault("components", {}).setdefault("schemas", {})
    if "Error" not in schemas:
        schemas["Error"] = {
            "type": "object",
            "required": ["error"],
            "properties": {
                "error": {
                    "type": "object",
                    "required": ["code", "message", "details"],
                    "properties": {
                        "code": {"type": "string"},
                        "message": {"type": "string"},
                        "details": {"type": "array", "items": {}},
                    },
                }
            },
        }
    for path_item in result.get("paths", {}).values():
        for method, operation in path_item.items():
            if method not in {"get", "post", "put", "patch", "delete"}:
                continue
            responses = operation.setdefault("responses", {})
            statuses = dict(COMMON)
            if method in {"post", "put", "patch"}:
                statuses.update(WITH_BODY)
            statuses.update(SERVER)
            for status, description in statuses.items():
                existing = responses.get(status)
                if existing is None:
                    responses[status] = {"description": description,
                                         "content": {"application/json": {"schema": ERROR_REF}}}
                elif not existing.get("description"):
                    existing["description"] = description
    return result


# PostgreSQL stores neither NUL nor a lone UTF-16 surrogate: api.parsers.StrictJSONParser refuses them anywhere in
# a body, and DRF's CharField (ProhibitNullCharactersValidator) in a query parameter. Every request string the
# schema declares says so for NUL with this pattern (unless it has a pattern, a format or an enum of its own). A
# lone surrogate is no Unicode scalar value, so no pattern can name it (regex engines that work on UTF-8, as
# schemathesis's validator does, refuse the range): the schema's description says it instead.
NO_NUL_PATTERN = r"^[^\u0000]*$"

# OpenAPI 3.1 schemas are JSON Schema 2020-12, DEFINITION_SCHEMA's own dialect: the component is the constant,
# to which forbid_nul_in_request_strings then adds NO_NUL_PATTERN like to every other request string.
DEFINITION_COMPONENT = "WorkflowDefinition"

_RUN = {"run_id": "$response.body#/id"}
_RUN_STEP = {"run_id": "$response.body#/id", "node_id": "$response.body#/steps/0/node_id"}
_SLUG = {"slug": "$response.body#/slug"}
_RUN_ACTIONS = {"run_get": _RUN, "run_cancel": _RUN, "run_events": _RUN, "run_timeline": _RUN, "run_logs": _RUN,
                "step_get": _RUN_STEP, "step_retry": _RUN_STEP, "step_skip": _RUN_STEP,
                "step_complete": _RUN_STEP, "step_approve": _RUN_STEP, "step_reject": _RUN_STEP,
                "step_rerun_from": _RUN_STEP, "step_rerun_preview": _RUN_STEP}
# (operation id, status) -> {target operation id: {its parameter: runtime expression}}
LINKS = {
    ("workflow_create", "201"): {"workflow_get": _SLUG, "run_start": _SLUG, "workflow_versions": _SLUG,
                                 "workflow_export": _SLUG, "workflow_analytics": _SLUG, "workflow_archive": _SLUG},
    ("workflow_list", "200"): {"workflow_get": {"slug": "$response.body#/results/0/slug"},
                               "run_start": {"slug": "$response.body#/results/0/slug"}},
    ("workflow_versions", "200"): {"workflow_version_get": {"slug": "$request.path.slug",
                                                            "number": "$response.body#/0/number"}},
    ("run_start", "201"): _RUN_ACTIONS,
    ("run_start", "200"): _RUN_ACTIONS,
    ("run_get", "200"): _RUN_ACTIONS,
    ("run_list", "200"): {"run_get": {"run_id": "$response.body#/results/0/id"},
                          "run_events": {"run_id": "$response.body#/results/0/id"}},
}


def add_definition_schema(result, generator, request, public):
    """drf-spectacular POSTPROCESSING_HOOK: the WorkflowDefinition component that api.serializers.DefinitionField
    refers to, built from DEFINITION_SCHEMA (its dialect is the schema's own, so ``$schema`` goes)."""
    schemas = result.setdefault("components", {}).setdefault("schemas", {})
    schemas[DEFINITION_COMPONENT] = {k: copy.deepcopy(v) for k, v in DEFINITION_SCHEMA.items() if k != "$schema"}
    return result


def forbid_nul_in_request_strings(result, generator, request, public):
    """drf-spectacular POSTPROCESSING_HOOK: NO_NUL_PATTERN on every string of request bodies and parameters."""
    schemas = result.get("components", {}).get("schemas", {})
    seen: set[str] = set()
    for path_item in result.get("paths", {}).values():
        for operation in path_item.values():
            if not isinstance(operation, dict):
                continue
            for parameter in operation.get("parameters", []):
                _forbid_nul(parameter.get("schema"), schemas, seen)
            for media in operation.get("requestBody", {}).get("content", {}).values():
                _forbid_nul(media.get("schema"), schemas, seen)
    return result


def _forbid_nul(schema, components: dict, seen: set[str]) -> None:
    stack = [schema]
    while stack:
        item = stack.pop()
        if not isinstance(item, dict):
            continue
        ref = item.get("$ref", "")
        if ref.startswith("#/components/schemas/"):
            name = ref.rsplit("/", 1)[1]
            if name not in seen:
                seen.add(name)
                stack.append(components.get(name))
            continue
        types = item.get("type")
        if (types == "string" or (isinstance(types, list) and "string" in types)) and not (
                {"pattern", "format", "enum", "const"} & item.keys()):
            item["pattern"] = NO_NUL_PATTERN
        stack.extend(item.get("properties", {}).values())
        stack.extend(item.get(key) for key in ("items", "additionalProperties"))
        for key in ("allOf", "anyOf", "oneOf", "prefixItems"):
            stack.extend(item.get(key, []))


def add_links(result, generator, request, public):
    """drf-spectacular POSTPROCESSING_HOOK: OpenAPI links (LINKS), which schemathesis's stateful phase follows."""
    operation_ids = {operation.get("operationId") for path_item in result.get("paths", {}).values()
                     for operation in path_item.values() if isinstance(operation, dict)}
    for path_item in result.get("paths", {}).values():
        for operation in path_item.values():
            if not isinstance(operation, dict):
                continue
            for status, response in operation.get("responses", {}).items():
                targets = LINKS.get((operation.get("operationId"), status), {})
                links = {target: {"operationId": target, "parameters": dict(parameters)}
                         for target, parameters in targets.items() if target in operation_ids}
                if links:
                    response.setdefault("links", {}).update(links)
    return result
