"""API keys for an organisation's owners: list, create (the secret is shown once), revoke.

Only people manage keys, never keys: a leaked key must not be able to mint itself successors
or revoke the keys that would replace it. So these endpoints take session authentication only.
"""

from __future__ import annotations

from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework import status
from rest_framework.generics import GenericAPIView
from rest_framework.request import Request
from rest_framework.response import Response

from registry.api.authentication import KeyUser
from registry.api.pagination import NewestFirstPagination
from registry.api.permissions import acting_organization, request_actor
from registry.api.serializers import (
    READ_ERRORS,
    WRITE_ERRORS,
    ApiKeyCreatedSerializer,
    ApiKeyCreateSerializer,
    ApiKeySerializer,
    parse,
)
from registry.exceptions import PermissionDenied
from registry.models import Organization
from registry.selectors.api_keys import api_key_get, api_key_list
from registry.services.api_keys import api_key_create, api_key_revoke

OWNERS_ONLY = "Owners only, signed in (session): an API key cannot manage API keys."


def key_managing_organization(request: Request) -> Organization:
    if isinstance(request.user, KeyUser):
        raise PermissionDenied("API keys cannot manage API keys: sign in as an owner of the organisation.")
    return acting_organization(request, scope="keys")


class ApiKeyListView(GenericAPIView):
    pagination_class = NewestFirstPagination
    serializer_class = ApiKeySerializer

    @extend_schema(
        operation_id="keys_list", summary="Your organisation's API keys (never their secrets)",
        description=OWNERS_ONLY, responses={200: ApiKeySerializer(many=True), **READ_ERRORS},
    )
    def get(self, request: Request) -> Response:
        organization = key_managing_organization(request)
        page = self.paginate_queryset(api_key_list(actor=request_actor(request), organization=organization))
        return self.get_paginated_response(ApiKeySerializer(page, many=True).data)

    @extend_schema(
        operation_id="keys_create",
        summary="Create an API key; its secret is in this response and never again",
        description=OWNERS_ONLY,
        request=ApiKeyCreateSerializer,
        responses={201: ApiKeyCreatedSerializer, **WRITE_ERRORS},
        examples=[OpenApiExample("A catalog-sync key", request_only=True, value={
            "name": "catalog sync", "scopes": ["works:read", "works:write"],
        })],
    )
    def post(self, request: Request) -> Response:
        organization = key_managing_organization(request)
        data = parse(ApiKeyCreateSerializer, request.data)
        api_key, raw_key = api_key_create(actor=request_actor(request), organization=organization, **data)
        return Response(
            ApiKeyCreatedSerializer(api_key, context={"raw_key": raw_key}).data, status=status.HTTP_201_CREATED
        )


class ApiKeyRevokeView(GenericAPIView):
    serializer_class = ApiKeySerializer

    @extend_schema(
        operation_id="keys_revoke", summary="Revoke an API key: it stops working at once",
        description=OWNERS_ONLY, request=None, responses={200: ApiKeySerializer, **WRITE_ERRORS},
    )
    def post(self, request: Request, key_id: int) -> Response:
        organization = key_managing_organization(request)
        api_key = api_key_get(organization=organization, key_id=key_id)
        return Response(ApiKeySerializer(api_key_revoke(actor=request_actor(request), api_key=api_key)).data)
