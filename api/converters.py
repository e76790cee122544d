"""URL path converters: a path segment that cannot name an object is 404 before any query runs.
The OpenAPI schema uses the same patterns for its path parameters."""

from __future__ import annotations

from django.urls import register_converter
from drf_spectacular.utils import OpenApiParameter


class NodeIdConverter:
    """A workflow node id (see docs/workflow-format.md)."""

    regex = "[A-Za-z_][A-Za-z0-9_-]{0,99}"

    def to_python(self, value):
        return value

    def to_url(self, value):
        return value


class StepIdConverter(NodeIdConverter):
    """A step: a node id, or an item of a mapped node, ``node[index]``."""

    regex = r"[A-Za-z_][A-Za-z0-9_-]{0,99}(?:\[[0-9]{1,9}\])?"


class CredentialNameConverter(NodeIdConverter):
    regex = "[A-Za-z0-9][A-Za-z0-9_.-]{0,99}"


class WorkflowSlugConverter(NodeIdConverter):
    regex = "[A-Za-z0-9_-]{1,100}"


register_converter(NodeIdConverter, "node_id")
register_converter(StepIdConverter, "step_id")
register_converter(CredentialNameConverter, "credential")
register_converter(WorkflowSlugConverter, "wslug")
register_converter(CredentialNameConverter, "limit")


def path_parameter(name: str, converter: type, description: str) -> OpenApiParameter:
    return OpenApiParameter(name, {"type": "string", "pattern": f"^{converter.regex}$"}, OpenApiParameter.PATH,
                            description=description)


SLUG = path_parameter("slug", WorkflowSlugConverter, "workflow slug")
NODE_ID = path_parameter("node_id", NodeIdConverter, "node id in the workflow")
STEP_ID = path_parameter("node_id", StepIdConverter, "node id in the workflow, or node[index] for an item of a "
                                                     "mapped node")
CREDENTIAL_NAME = path_parameter("name", CredentialNameConverter, "credential name")
LIMIT_NAME = path_parameter("name", CredentialNameConverter, "limit name")
