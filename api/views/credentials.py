"""Credentials: names, kinds and allowed hosts leave the server; secrets go in, never out."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework.response import Response

from api.converters import CREDENTIAL_NAME
from api.permissions import CanDesign, CanUseCredentials
from api.serializers import (
    CredentialCreateSerializer,
    CredentialRotateSerializer,
    CredentialSerializer,
    CredentialUpdateSerializer,
    ErrorSerializer,
)
from api.views.base import ApiView, actor, parse
from engine.integrations.credentials import (
    credential_create,
    credential_delete,
    credential_get,
    credential_list,
    credential_rotate,
    credential_update,
)

TAG = ["credentials"]
NAME = CREDENTIAL_NAME


class CredentialCollectionApi(ApiView):
    permissions = {"post": CanDesign}

    @extend_schema(tags=TAG, operation_id="credential_list", summary="List credentials (names, kinds, allowed hosts)",
                   responses=CredentialSerializer(many=True))
    def get(self, request):
        return Response(CredentialSerializer(credential_list(), many=True).data)

    @extend_schema(tags=TAG, operation_id="credential_create", summary="Store a new credential",
                   request=CredentialCreateSerializer,
                   responses={201: CredentialSerializer, 400: ErrorSerializer, 409: ErrorSerializer})
    def post(self, request):
        body = parse(CredentialCreateSerializer, request.data)
        created = credential_create(name=body["name"], kind=body["kind"], secret=body["secret"],
                                    allowed_hosts=body["allowed_hosts"], actor=actor(request))
        return Response(CredentialSerializer(created).data, status=201)


class CredentialDetailApi(ApiView):
    permissions = {"patch": CanUseCredentials, "delete": CanDesign}

    @extend_schema(tags=TAG, operation_id="credential_get", summary="A credential's name, kind and allowed hosts",
                   parameters=[NAME], responses=CredentialSerializer)
    def get(self, request, name):
        return Response(CredentialSerializer(credential_get(name)).data)

    @extend_schema(tags=TAG, operation_id="credential_update", summary="Set the hosts a credential may be sent to",
                   parameters=[NAME], request=CredentialUpdateSerializer,
                   responses={200: CredentialSerializer, 400: ErrorSerializer, 403: ErrorSerializer})
    def patch(self, request, name):
        body = parse(CredentialUpdateSerializer, request.data)
        if "allowed_hosts" not in body:
            return Response(CredentialSerializer(credential_get(name)).data)
        return Response(CredentialSerializer(credential_update(name=name, allowed_hosts=body["allowed_hosts"],
                                                               actor=actor(request))).data)

    @extend_schema(tags=TAG, operation_id="credential_delete", summary="Delete a credential",
                   parameters=[NAME], responses={204: None})
    def delete(self, request, name):
        credential_delete(name=name)
        return Response(status=204)


class CredentialRotateApi(ApiView):
    permissions = {"post": CanDesign}

    @extend_schema(tags=TAG, operation_id="credential_rotate", summary="Replace a credential's secret",
                   parameters=[NAME], request=CredentialRotateSerializer,
                   responses={200: CredentialSerializer, 400: ErrorSerializer})
    def post(self, request, name):
        body = parse(CredentialRotateSerializer, request.data)
        return Response(CredentialSerializer(credential_rotate(name=name, secret=body["secret"],
                                                               actor=actor(request))).data)
