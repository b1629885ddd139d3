"""Web hosts: a studio claims a host, reads how to prove it, asks Kyoka to look, or withdraws it.

A URL or pattern registration has standing only on a host its owner has proven, so these
endpoints are how a studio's URL registrations come to count. The lookup itself runs in a
worker: `POST /hosts/{host}/verify` answers 202 at once with the claim's state.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema, extend_schema_field
from rest_framework import serializers, status
from rest_framework.generics import GenericAPIView
from rest_framework.request import Request
from rest_framework.response import Response

from registry.api.pagination import NewestFirstPagination
from registry.api.permissions import acting_organization, request_actor
from registry.api.serializers import READ_ERRORS, WRITE_ERRORS, ErrorSerializer, parse
from registry.exceptions import NotFound
from registry.hosts.instructions import host_instructions, host_problems
from registry.models import Organization, VerifiedHost
from registry.selectors.hosts import host_get, host_list, host_state
from registry.services.hosts import host_claim, host_remove, host_verify_request

RIGHTSHOLDER = Organization.Kind.RIGHTSHOLDER
HOST_PARAMETER = OpenApiParameter(
    "host", str, OpenApiParameter.PATH, description="The claimed host, as listed (e.g. cdn.example.com)."
)


class DnsInstructionSerializer(serializers.Serializer):
    record_type = serializers.CharField(help_text="Always TXT")
    name = serializers.CharField(help_text="The DNS name the record goes on: the claimed host itself")
    value = serializers.CharField(help_text="kyoka-verification=<token>")
    covers_subdomains = serializers.BooleanField()
    text = serializers.CharField(help_text="The same in plain words, in the request's language")


class HttpInstructionSerializer(serializers.Serializer):
    url = serializers.CharField(help_text="https://HOST/.well-known/kyoka-verification.txt")
    content = serializers.CharField(help_text="The token, on a line of its own")
    covers_subdomains = serializers.BooleanField()
    text = serializers.CharField()


class InstructionsSerializer(serializers.Serializer):
    dns = DnsInstructionSerializer()
    http = HttpInstructionSerializer()


class ProblemSerializer(serializers.Serializer):
    method = serializers.ChoiceField(choices=["host", "dns", "http"])
    code = serializers.CharField(help_text="Stable, e.g. no_record, forbidden_address, redirect, too_large, timeout")
    detail = serializers.CharField(help_text="Data such as the refused address or the HTTP status")
    message = serializers.CharField(help_text="In the request's language")


class HostSerializer(serializers.ModelSerializer):
    status = serializers.SerializerMethodField(
        help_text="verified, checking (a lookup is on its way), failed (the last lookup found no proof) or unverified"
    )
    verified = serializers.SerializerMethodField()
    instructions = serializers.SerializerMethodField()
    last_error = serializers.SerializerMethodField(help_text="Why the last lookup found no proof (empty if it did)")

    class Meta:
        model = VerifiedHost
        fields = ["host", "status", "verified", "method", "covers_subdomains", "verified_at", "last_checked_at",
                  "last_error", "token", "instructions", "created_at"]

    def get_status(self, claim: VerifiedHost) -> str:
        return host_state(claim)

    def get_verified(self, claim: VerifiedHost) -> bool:
        return claim.verified_at is not None

    @extend_schema_field(InstructionsSerializer)
    def get_instructions(self, claim: VerifiedHost) -> dict[str, Any]:
        return host_instructions(claim.host, claim.token)

    @extend_schema_field(ProblemSerializer(many=True))
    def get_last_error(self, claim: VerifiedHost) -> list[dict[str, str]]:
        return host_problems(claim.host, claim.last_error)


class HostClaimSerializer(serializers.Serializer):
    host = serializers.CharField(max_length=300, help_text="A host name (cdn.example.com) or an https URL of one")


CLAIM_EXAMPLE = {"host": "cdn.studio.example"}


class HostListView(GenericAPIView):
    pagination_class = NewestFirstPagination
    serializer_class = HostSerializer

    @extend_schema(
        operation_id="hosts_list",
        summary="Your claimed web hosts, with their tokens and how to prove each",
        description="Scope `works:read`; any member may read. Instructions are in the request's language.",
        responses={200: HostSerializer(many=True), **READ_ERRORS},
    )
    def get(self, request: Request) -> Response:
        organization = acting_organization(request, scope="works:read", kind=RIGHTSHOLDER)
        page = self.paginate_queryset(host_list(organization=organization))
        return self.get_paginated_response(HostSerializer(page, many=True).data)

    @extend_schema(
        operation_id="hosts_create",
        summary="Claim a web host (claiming it again returns the same claim and token)",
        description=(
            "Scope `works:write`; managers and owners. A public suffix (`com`, `co.jp`, `github.io`), an IP "
            "address or anything that is not a host name is refused (400). At most 100 claims (429)."
        ),
        request=HostClaimSerializer,
        responses={201: HostSerializer, 200: HostSerializer, **WRITE_ERRORS, 429: ErrorSerializer},
        examples=[OpenApiExample("A studio's image CDN", value=CLAIM_EXAMPLE, request_only=True)],
    )
    def post(self, request: Request) -> Response:
        organization = acting_organization(request, scope="works:write", kind=RIGHTSHOLDER)
        host = parse(HostClaimSerializer, request.data)["host"]
        existed = _already_claimed(organization, host)
        claim = host_claim(actor=request_actor(request), organization=organization, host=host)
        return Response(HostSerializer(claim).data, status=status.HTTP_200_OK if existed else status.HTTP_201_CREATED)


def _already_claimed(organization: Organization, host: str) -> bool:
    try:
        host_get(organization=organization, host=host)
    except NotFound:  # not claimed yet, or not a host at all (the service then says why)
        return False
    return True


class HostDetailView(GenericAPIView):
    serializer_class = HostSerializer

    @extend_schema(operation_id="hosts_retrieve", summary="One claimed host", parameters=[HOST_PARAMETER],
                   responses={200: HostSerializer, **READ_ERRORS})
    def get(self, request: Request, host: str) -> Response:
        organization = acting_organization(request, scope="works:read", kind=RIGHTSHOLDER)
        return Response(HostSerializer(host_get(organization=organization, host=host)).data)

    @extend_schema(
        operation_id="hosts_destroy",
        summary="Withdraw a claim: URL registrations on the host lose their standing from the next check on",
        parameters=[HOST_PARAMETER], responses={204: None, **WRITE_ERRORS},
    )
    def delete(self, request: Request, host: str) -> Response:
        organization = acting_organization(request, scope="works:write", kind=RIGHTSHOLDER)
        host_remove(actor=request_actor(request), organization=organization, host=host)
        return Response(status=status.HTTP_204_NO_CONTENT)


class HostVerifyView(GenericAPIView):
    serializer_class = HostSerializer

    @extend_schema(
        operation_id="hosts_verify",
        summary="Ask Kyoka to look for the proof (DNS TXT record, then the well-known file)",
        description=(
            "Scope `works:write`. Answers 202 at once with the claim (`status` is `checking` while the lookup is "
            "on its way); poll `GET /api/v1/hosts/{host}`. The lookup refuses hosts that resolve to private, "
            "loopback, link-local, multicast or reserved addresses, follows no redirects, and gives up after "
            "5 seconds or 4,096 bytes. A proven host stays proven when a later lookup finds nothing."
        ),
        request=None, parameters=[HOST_PARAMETER], responses={202: HostSerializer, **WRITE_ERRORS},
    )
    def post(self, request: Request, host: str) -> Response:
        organization = acting_organization(request, scope="works:write", kind=RIGHTSHOLDER)
        claim = host_verify_request(actor=request_actor(request), organization=organization, host=host)
        return Response(HostSerializer(claim).data, status=status.HTTP_202_ACCEPTED)
