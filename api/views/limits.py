"""Named limits: concurrency and rate per key, with their buckets' live state."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework.response import Response

from api.converters import LIMIT_NAME
from api.permissions import CanDesign
from api.serializers import ErrorSerializer, LimitCreateSerializer, LimitSerializer, LimitUpdateSerializer
from api.views.base import ApiView, parse
from engine.services.limits import limit_create, limit_delete, limit_get, limit_list, limit_update

TAG = ["limits"]


class LimitCollectionApi(ApiView):
    permissions = {"post": CanDesign}

    @extend_schema(tags=TAG, operation_id="limit_list", summary="List limits with their buckets' state",
                   responses=LimitSerializer(many=True))
    def get(self, request):
        return Response(LimitSerializer(limit_list(), many=True).data)

    @extend_schema(tags=TAG, operation_id="limit_create", summary="Create a limit",
                   request=LimitCreateSerializer,
                   responses={201: LimitSerializer, 400: ErrorSerializer, 409: ErrorSerializer})
    def post(self, request):
        body = parse(LimitCreateSerializer, request.data)
        return Response(LimitSerializer(limit_create(**body)).data, status=201)


class LimitDetailApi(ApiView):
    permissions = {"patch": CanDesign, "delete": CanDesign}

    @extend_schema(tags=TAG, operation_id="limit_get", summary="A limit and its buckets' state",
                   parameters=[LIMIT_NAME], responses={200: LimitSerializer, 404: ErrorSerializer})
    def get(self, request, name):
        return Response(LimitSerializer(limit_get(name)).data)

    @extend_schema(tags=TAG, operation_id="limit_update", summary="Change a limit's concurrency or rate",
                   parameters=[LIMIT_NAME], request=LimitUpdateSerializer,
                   responses={200: LimitSerializer, 400: ErrorSerializer, 404: ErrorSerializer})
    def patch(self, request, name):
        body = parse(LimitUpdateSerializer, request.data)
        return Response(LimitSerializer(limit_update(name=name, changes=dict(body))).data)

    @extend_schema(tags=TAG, operation_id="limit_delete", summary="Delete a limit no step waits for or holds",
                   parameters=[LIMIT_NAME], responses={204: None, 404: ErrorSerializer, 409: ErrorSerializer})
    def delete(self, request, name):
        limit_delete(name=name)
        return Response(status=204)
