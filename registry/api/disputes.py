"""The dispute API: only the parties (any member of either side, keys with the `disputes`
scope) and reviewers see a dispute; to anyone else it does not exist (404)."""

from __future__ import annotations

import uuid

from django.contrib.auth import get_user_model
from django.db.models import Prefetch
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.generics import GenericAPIView
from rest_framework.pagination import CursorPagination
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from registry.access import authorize_reviewer
from registry.api.parsers import LimitedJSONParser
from registry.api.permissions import acting_organization, request_actor, require_scope
from registry.exceptions import NotFound, ValidationFailed
from registry.models import Dispute, DisputeEvent, DisputeWork, EvidenceFile, Organization, Work
from registry.selectors.disputes import dispute_freezes, dispute_reference_owners, disputes_visible_to
from registry.services import disputes as services

SCOPE = "disputes"


# --- what the API answers ------------------------------------------------------------------


class DisputeWorkSerializer(serializers.ModelSerializer):
    """A work of the dispute. A party sees its own works' references (external_ref, file hashes,
    URLs, identifiers) and only the title of the other side's; reviewers see everything."""

    work = serializers.UUIDField(source="work_id")
    title = serializers.CharField(source="work.title")
    owner = serializers.CharField(source="work.owner.slug")
    status = serializers.CharField(source="work.status")
    references = serializers.SerializerMethodField(
        help_text="external_ref, sha256, urls, identifiers; null for the other party's works."
    )

    class Meta:
        model = DisputeWork
        fields = ["work", "title", "owner", "status", "side", "freezes", "references"]

    def get_references(self, link: DisputeWork) -> dict | None:
        visible = self.context.get("visible_owners")
        if visible is not None and link.work.owner_id not in visible:
            return None
        work = link.work
        return {
            "external_ref": work.external_ref,
            "sha256": sorted(f.sha256 for f in work.files.all()),
            "urls": sorted(u.url for u in work.urls.all()),
            "identifiers": sorted(f"{i.scheme}:{i.value}" for i in work.identifiers.all()),
        }


class DisputeEventSerializer(serializers.ModelSerializer):
    by = serializers.SerializerMethodField(help_text="A party's org slug, 'reviewer', or 'kyoka'.")

    class Meta:
        model = DisputeEvent
        fields = ["id", "kind", "by", "from_status", "to_status", "message", "created_at"]

    def get_by(self, event: DisputeEvent) -> str:
        if event.organization_id is not None and event.kind != DisputeEvent.Kind.INFO_REQUESTED:
            return event.organization.slug
        return "reviewer" if event.actor_id is not None else "kyoka"


class EvidenceSerializer(serializers.ModelSerializer):
    name = serializers.CharField(source="original_name")
    organization = serializers.CharField(source="organization.slug")

    class Meta:
        model = EvidenceFile
        fields = ["id", "name", "organization", "created_at"]


class DisputeSerializer(serializers.ModelSerializer):
    claimant = serializers.CharField(source="claimant.slug")
    respondent = serializers.CharField(source="respondent.slug")
    automatic = serializers.SerializerMethodField(help_text="Opened by Kyoka on a registration conflict.")
    freezing = serializers.SerializerMethodField(
        help_text="Whether, while open, it makes any of its works answer `disputed` (false: waiting in triage)."
    )

    class Meta:
        model = Dispute
        fields = [
            "id",
            "kind",
            "status",
            "claimant",
            "respondent",
            "statement",
            "automatic",
            "freezing",
            "decision_reason",
            "remedy",
            "decided_at",
            "created_at",
            "updated_at",
        ]

    def get_automatic(self, dispute: Dispute) -> bool:
        return dispute.conflict_key is not None

    def get_freezing(self, dispute: Dispute) -> bool:
        return dispute_freezes(dispute)


class DisputeDetailSerializer(DisputeSerializer):
    works = DisputeWorkSerializer(source="dispute_works", many=True)
    events = DisputeEventSerializer(many=True)
    evidence = EvidenceSerializer(many=True)

    class Meta(DisputeSerializer.Meta):
        fields = [*DisputeSerializer.Meta.fields, "works", "events", "evidence"]


# --- what the API accepts ------------------------------------------------------------------


class DisputeOpenSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=Dispute.Kind.choices)
    statement = serializers.CharField(max_length=services.MAX_STATEMENT_CHARS)
    works = serializers.ListField(child=serializers.UUIDField(), min_length=1, max_length=1000)
    evidence = serializers.ListField(child=serializers.FileField(), required=False)


class CommentSerializer(serializers.Serializer):
    message = serializers.CharField(max_length=services.MAX_STATEMENT_CHARS)
    evidence = serializers.ListField(child=serializers.FileField(), required=False)


class WithdrawSerializer(serializers.Serializer):
    reason = serializers.CharField(required=False, allow_blank=True, default="")


class AssignSerializer(serializers.Serializer):
    assignee = serializers.IntegerField(allow_null=True, help_text="A reviewer's user id, or null.")


class RequestInfoSerializer(serializers.Serializer):
    message = serializers.CharField()
    party = serializers.CharField(required=False, allow_null=True, default=None, help_text="Org slug; none: both.")


class DecideSerializer(serializers.Serializer):
    outcome = serializers.ChoiceField(choices=[Dispute.Status.UPHELD, Dispute.Status.REJECTED])
    reason = serializers.CharField()
    remedy = serializers.ChoiceField(choices=Dispute.Remedy.choices, required=False, allow_blank=True, default="")


def _parse(serializer_class: type[serializers.Serializer], request: Request) -> dict:
    # Multipart request.data holds the uploaded files too: `evidence` arrives as a list.
    serializer = serializer_class(data=request.data)
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)


def _uploads(files) -> list[tuple]:
    return [(f, f.name) for f in files or ()]


# --- the views -----------------------------------------------------------------------------


class DisputePagination(CursorPagination):
    ordering = "-created_at"


def _visible_dispute(request: Request, dispute_id: uuid.UUID, *, detail: bool = False) -> Dispute:
    """The dispute, if the caller may see it; otherwise 404, as if it did not exist."""
    require_scope(request, SCOPE)
    disputes = disputes_visible_to(request_actor(request))
    if detail:
        disputes = disputes.prefetch_related(
            Prefetch(
                "dispute_works",
                DisputeWork.objects.select_related("work__owner")
                .prefetch_related("work__files", "work__urls", "work__identifiers")
                .order_by("side", "work__title"),
            ),
            Prefetch("events", DisputeEvent.objects.select_related("organization").order_by("created_at", "pk")),
            Prefetch("evidence", EvidenceFile.objects.select_related("organization").order_by("created_at")),
        )
    dispute = disputes.filter(pk=dispute_id).first()
    if dispute is None:
        raise NotFound("No such dispute.")
    return dispute


def _detail(dispute_id: uuid.UUID, request: Request, status_code: int = status.HTTP_200_OK) -> Response:
    dispute = _visible_dispute(request, dispute_id, detail=True)
    context = {"visible_owners": dispute_reference_owners(request_actor(request))}
    return Response(DisputeDetailSerializer(dispute, context=context).data, status=status_code)


class DisputeListView(GenericAPIView):
    parser_classes = [LimitedJSONParser, MultiPartParser, FormParser]
    # A list view with a paginator, so the schema describes the page that is answered.
    pagination_class = DisputePagination
    serializer_class = DisputeSerializer

    @extend_schema(
        operation_id="disputes_list",
        summary="Disputes your organisations are party to (reviewers: all)",
        responses=DisputeSerializer(many=True),
    )
    def get(self, request: Request) -> Response:
        require_scope(request, SCOPE)
        disputes = disputes_visible_to(request_actor(request))
        if wanted := request.query_params.get("status"):
            disputes = disputes.filter(status__in=wanted.split(","))
        if kind := request.query_params.get("kind"):
            disputes = disputes.filter(kind=kind)
        page = self.paginate_queryset(disputes)
        return self.get_paginated_response(DisputeSerializer(page, many=True).data)

    @extend_schema(
        operation_id="disputes_create",
        summary="File a dispute",
        description="`works`: the works the claim is about — another organisation's, and optionally your "
        "own conflicting ones. Multipart requests may attach `evidence` files.",
        request=DisputeOpenSerializer,
        responses={201: DisputeDetailSerializer},
    )
    def post(self, request: Request) -> Response:
        claimant = acting_organization(request, scope=SCOPE)
        data = _parse(DisputeOpenSerializer, request)
        wanted = set(data["works"])
        works = list(Work.objects.filter(pk__in=wanted))
        if missing := wanted - {w.pk for w in works}:
            raise ValidationFailed(
                "Some works do not exist.", fields={"works": [f"Unknown work {w}." for w in sorted(map(str, missing))]}
            )
        dispute = services.dispute_open(
            actor=request_actor(request),
            claimant=claimant,
            kind=data["kind"],
            statement=data["statement"],
            works=works,
            evidence=_uploads(data.get("evidence")),
        )
        return _detail(dispute.pk, request, status.HTTP_201_CREATED)


class DisputeDetailView(APIView):
    @extend_schema(operation_id="disputes_retrieve", responses=DisputeDetailSerializer)
    def get(self, request: Request, dispute_id: uuid.UUID) -> Response:
        return _detail(dispute_id, request)


class DisputeCommentsView(APIView):
    parser_classes = [LimitedJSONParser, MultiPartParser, FormParser]

    @extend_schema(
        operation_id="disputes_comment",
        summary="Answer or add to a dispute (a party's manager, its key, or a reviewer)",
        request=CommentSerializer,
        responses={201: DisputeDetailSerializer},
    )
    def post(self, request: Request, dispute_id: uuid.UUID) -> Response:
        dispute = _visible_dispute(request, dispute_id)
        data = _parse(CommentSerializer, request)
        services.dispute_comment(
            actor=request_actor(request),
            dispute=dispute,
            message=data["message"],
            evidence=_uploads(data.get("evidence")),
        )
        return _detail(dispute.pk, request, status.HTTP_201_CREATED)


class DisputeWithdrawView(APIView):
    @extend_schema(operation_id="disputes_withdraw", request=WithdrawSerializer, responses=DisputeDetailSerializer)
    def post(self, request: Request, dispute_id: uuid.UUID) -> Response:
        dispute = _visible_dispute(request, dispute_id)
        data = _parse(WithdrawSerializer, request)
        services.dispute_withdraw(actor=request_actor(request), dispute=dispute, reason=data["reason"])
        return _detail(dispute.pk, request)


class DisputeAssignView(APIView):
    @extend_schema(operation_id="disputes_assign", request=AssignSerializer, responses=DisputeDetailSerializer)
    def post(self, request: Request, dispute_id: uuid.UUID) -> Response:
        dispute = _visible_dispute(request, dispute_id)
        authorize_reviewer(request_actor(request))  # before the body: a party learns nothing from a 400
        data = _parse(AssignSerializer, request)
        assignee = None
        if data["assignee"] is not None:
            assignee = get_user_model().objects.filter(pk=data["assignee"]).first()
            if assignee is None:
                raise ValidationFailed("No such user.", fields={"assignee": ["Unknown user."]})
        services.dispute_assign(actor=request_actor(request), dispute=dispute, assignee=assignee)
        return _detail(dispute.pk, request)


class DisputeStartReviewView(APIView):
    @extend_schema(operation_id="disputes_start_review", request=None, responses=DisputeDetailSerializer)
    def post(self, request: Request, dispute_id: uuid.UUID) -> Response:
        dispute = _visible_dispute(request, dispute_id)
        services.dispute_start_review(actor=request_actor(request), dispute=dispute)
        return _detail(dispute.pk, request)


class DisputeRequestInfoView(APIView):
    @extend_schema(
        operation_id="disputes_request_info", request=RequestInfoSerializer, responses=DisputeDetailSerializer
    )
    def post(self, request: Request, dispute_id: uuid.UUID) -> Response:
        dispute = _visible_dispute(request, dispute_id)
        authorize_reviewer(request_actor(request))  # before the body: a party learns nothing from a 400
        data = _parse(RequestInfoSerializer, request)
        party = None
        if data["party"]:
            party = Organization.objects.filter(slug=data["party"]).first()
            if party is None:
                raise ValidationFailed("No such organisation.", fields={"party": ["Unknown organisation."]})
        services.dispute_request_info(
            actor=request_actor(request), dispute=dispute, message=data["message"], party=party
        )
        return _detail(dispute.pk, request)


class DisputeDecideView(APIView):
    @extend_schema(
        operation_id="disputes_decide",
        summary="Decide a dispute under review (reviewers); its effects apply at once",
        request=DecideSerializer,
        responses=DisputeDetailSerializer,
    )
    def post(self, request: Request, dispute_id: uuid.UUID) -> Response:
        dispute = _visible_dispute(request, dispute_id)
        data = _parse(DecideSerializer, request)
        services.dispute_decide(
            actor=request_actor(request),
            dispute=dispute,
            outcome=data["outcome"],
            reason=data["reason"],
            remedy=data["remedy"],
        )
        return _detail(dispute.pk, request)
