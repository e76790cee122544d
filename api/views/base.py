"""What every API view shares: authentication, a permission level per HTTP method, input parsing."""

from __future__ import annotations

from rest_framework.views import APIView

from api.permissions import CanView


# A view for one path. ``permissions`` maps an HTTP method to its permission class (default:
# read access); each method is one operation. (A comment, not a docstring: the OpenAPI schema
# would show a docstring as every operation's description.)
class ApiView(APIView):

    permissions: dict[str, type] = {}

    def get_permissions(self):
        method = (self.request.method or "GET").lower()
        return [self.permissions.get(method, CanView)()]

    def paginate(self, queryset, serializer_class):
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(queryset, self.request, view=self)
        return paginator.get_paginated_response(serializer_class(page, many=True).data)


def parse(serializer_class, data):
    """Validate request data (a body or query parameters); raise 400 with every error otherwise."""
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


def actor(request):
    return request.user
