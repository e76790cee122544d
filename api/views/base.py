"""What every API view shares: authentication, a permission level per HTTP method, input parsing,
pagination whose query parameters are checked by the serializers the schema declares."""

from __future__ import annotations

from rest_framework import exceptions as drf
from rest_framework.pagination import CursorPagination, PageNumberPagination
from rest_framework.views import APIView

from api.permissions import CanView
from api.serializers import MAX_PAGE_SIZE, PAGE_SIZE, CursorQuerySerializer, PageQuerySerializer


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


def parse_query(serializer_class, query_params):
    """``parse`` for query parameters. DRF takes an optional parameter given empty (``?page_size=``) as absent,
    which the schema does not say: it is refused unless its field allows blank (and the schema says so)."""
    fields = serializer_class().fields
    empty = {name: ["may not be empty"] for name, value in query_params.items()
             if value == "" and name in fields and not getattr(fields[name], "allow_blank", False)}
    if empty:
        raise drf.ValidationError(empty)
    return parse(serializer_class, query_params)


def actor(request):
    return request.user


class NumberedPages(PageNumberPagination):
    """``?page=&page_size=``, checked by ``query_serializer`` (list it in the view's schema parameters)."""

    query_serializer = PageQuerySerializer
    page_size = PAGE_SIZE
    page_size_query_param = "page_size"
    max_page_size = MAX_PAGE_SIZE
    last_page_strings = ()  # ``page`` is a number, as the schema says

    def get_page_size(self, request):
        return parse_query(self.query_serializer, request.query_params).get("page_size", self.page_size)


class CursorPages(CursorPagination):
    """``?cursor=&page_size=``, checked by ``query_serializer`` (list it in the view's schema parameters)."""

    query_serializer = CursorQuerySerializer
    page_size = PAGE_SIZE
    page_size_query_param = "page_size"
    max_page_size = MAX_PAGE_SIZE

    def get_page_size(self, request):
        return parse_query(self.query_serializer, request.query_params).get("page_size", self.page_size)
