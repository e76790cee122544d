"""OpenAPI schema post-processing: the error responses every operation can give, in one place."""

from __future__ import annotations

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
