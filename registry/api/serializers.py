"""Serializers for the rightsholder API: they translate HTTP to and from Python, nothing more.

Validation that is a rule of the domain (purposes, territories, scopes, who owns what) lives in
the services, which the portal calls too; here only shapes and types are checked.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from django.utils import timezone
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from registry.matching.fingerprints import phash_to_hex
from registry.models import ApiKey, ContentFile, Grant, PermissionRequest, Work, WorkAccess
from registry.models.access import API_KEY_SCOPES

MAX_REFERENCES = 1000
MAX_ACTIVITY_DAYS = 366


def parse(serializer_class: type[serializers.Serializer], data: Any, *, partial: bool = False) -> dict[str, Any]:
    """Validate request data (or query parameters) and return the typed values."""
    serializer = serializer_class(data=data, partial=partial)
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)


class ErrorDetailSerializer(serializers.Serializer):
    code = serializers.CharField()
    message = serializers.CharField()
    fields = serializers.DictField(child=serializers.ListField(child=serializers.CharField()))


class ErrorSerializer(serializers.Serializer):
    error = ErrorDetailSerializer()


# How refusals are documented: every one has the same error shape.
READ_ERRORS = {401: ErrorSerializer, 403: ErrorSerializer, 404: ErrorSerializer}
WRITE_ERRORS = {400: ErrorSerializer, **READ_ERRORS, 409: ErrorSerializer}


def references_field(help_text: str) -> serializers.ListField:
    return serializers.ListField(
        child=serializers.CharField(max_length=2048), max_length=MAX_REFERENCES, required=False, help_text=help_text
    )


# --- works ----------------------------------------------------------------------------------


class ContentFileSerializer(serializers.ModelSerializer):
    phash = serializers.SerializerMethodField(help_text="64-bit perceptual hash, 16 hex characters (images only)")

    class Meta:
        model = ContentFile
        fields = ["id", "sha256", "phash", "media_type", "size", "width", "height", "original_name", "created_at"]

    def get_phash(self, content_file: ContentFile) -> str | None:
        # Iterates the prefetched hashes rather than querying once per file.
        for perceptual_hash in content_file.perceptual_hashes.all():
            if perceptual_hash.source == perceptual_hash.Source.IMAGE:
                return phash_to_hex(perceptual_hash.value)
        return None


class WorkSerializer(serializers.ModelSerializer):
    owner = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    parent = serializers.UUIDField(source="parent_id", read_only=True, allow_null=True)
    urls = serializers.SerializerMethodField()
    identifiers = serializers.SerializerMethodField()
    files = ContentFileSerializer(many=True, read_only=True)

    class Meta:
        model = Work
        fields = [
            "id", "owner", "external_ref", "title", "kind", "status", "parent", "description", "year", "creators",
            "urls", "identifiers", "files", "created_at", "updated_at", "withdrawn_at",
        ]

    def get_urls(self, work: Work) -> list[str]:
        return sorted(u.url for u in work.urls.all())

    def get_identifiers(self, work: Work) -> list[str]:
        return sorted(f"{i.scheme}:{i.value}" for i in work.identifiers.all())


class WorkFilterSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=Work.Kind.choices, required=False)
    status = serializers.ChoiceField(choices=Work.Status.choices, required=False)
    q = serializers.CharField(required=False, max_length=200, help_text="searches title and external_ref")
    external_ref = serializers.CharField(required=False, max_length=255)
    parent = serializers.UUIDField(required=False, help_text="only the direct children of this work")


class WorkWriteSerializer(serializers.Serializer):
    title = serializers.CharField(max_length=500)
    kind = serializers.ChoiceField(choices=Work.Kind.choices, default=Work.Kind.OTHER)
    parent = serializers.UUIDField(required=False, allow_null=True, help_text="id of a work of yours")
    urls = references_field("URLs, or RFC 9309 patterns with * and $")
    identifiers = references_field('"scheme:value": isan, eidr, isbn, isrc, iswc, iscc, doi')
    description = serializers.CharField(required=False, allow_blank=True)
    year = serializers.IntegerField(required=False, allow_null=True, min_value=1, max_value=9999)
    creators = serializers.CharField(required=False, allow_blank=True, max_length=500)


class WorkCreateSerializer(WorkWriteSerializer):
    external_ref = serializers.CharField(max_length=255, help_text="your own id for the work, unique in your catalog")


class WorkUpdateSerializer(WorkWriteSerializer):
    """A PATCH: only the fields sent change; `urls` and `identifiers`, when sent, replace the sets."""


class WorkWithdrawSerializer(serializers.Serializer):
    reason = serializers.CharField(required=False, allow_blank=True, max_length=2000)


class ContentFileUploadSerializer(serializers.Serializer):
    file = serializers.FileField()


# --- grants ---------------------------------------------------------------------------------


class ConditionsSerializer(serializers.Serializer):
    attribution = serializers.CharField(required=False, allow_blank=True, default="")
    licence_url = serializers.CharField(required=False, allow_blank=True, default="", max_length=2048)
    compensation = serializers.CharField(required=False, allow_blank=True, default="")


class GrantSerializer(serializers.ModelSerializer):
    grantor = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    licensee = serializers.SlugRelatedField(
        slug_field="slug", read_only=True, allow_null=True,
        help_text="the licensee organisation, or null for any verified AI developer",
    )
    work = serializers.UUIDField(source="work_id", read_only=True, allow_null=True)
    conditions = ConditionsSerializer(read_only=True)
    state = serializers.SerializerMethodField(help_text="active, scheduled, expired or revoked, as of now")

    class Meta:
        model = Grant
        fields = [
            "id", "grantor", "scope", "work", "licensee", "purposes", "territories", "contexts", "valid_from",
            "valid_until", "conditions", "state", "created_at", "revoked_at", "revocation_reason",
        ]

    @extend_schema_field(serializers.ChoiceField(choices=["active", "scheduled", "expired", "revoked"]))
    def get_state(self, grant: Grant) -> str:
        return grant.state_at(self.context.get("at") or timezone.now())


class GrantFilterSerializer(serializers.Serializer):
    work = serializers.UUIDField(required=False)
    in_force = serializers.BooleanField(required=False, allow_null=True, default=None)


class GrantTermsSerializer(serializers.Serializer):
    purposes = serializers.ListField(child=serializers.CharField(max_length=40), max_length=20)
    territories = serializers.ListField(
        child=serializers.CharField(max_length=2), max_length=300, required=False,
        help_text="ISO 3166-1 alpha-2; empty = worldwide",
    )
    contexts = serializers.ListField(
        child=serializers.CharField(max_length=20), max_length=3, required=False,
        help_text="commercial, non-commercial, research; empty = any",
    )
    valid_from = serializers.DateTimeField(required=False, help_text="default: now")
    valid_until = serializers.DateTimeField(required=False, allow_null=True)
    conditions = ConditionsSerializer(required=False)


class GrantCreateSerializer(GrantTermsSerializer):
    scope = serializers.ChoiceField(choices=Grant.Scope.choices)
    work = serializers.UUIDField(required=False, allow_null=True, help_text='required when scope is "work"')
    licensee = serializers.SlugField(
        allow_null=True, help_text="an AI developer's slug; null (sent explicitly) for any verified AI developer"
    )


class GrantRevokeSerializer(serializers.Serializer):
    reason = serializers.CharField(required=False, allow_blank=True, max_length=2000)


# --- permission requests --------------------------------------------------------------------


class PermissionRequestSerializer(serializers.ModelSerializer):
    requester = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    rightsholder = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    work = serializers.UUIDField(source="work_id", read_only=True, allow_null=True)
    grant = serializers.UUIDField(source="grant_id", read_only=True, allow_null=True)

    class Meta:
        model = PermissionRequest
        fields = [
            "id", "requester", "rightsholder", "work", "purposes", "territories", "contexts", "message", "status",
            "created_at", "decided_at", "response", "grant",
        ]


class PermissionRequestFilterSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=PermissionRequest.Status.choices, required=False)


class PermissionRequestCreateSerializer(serializers.Serializer):
    rightsholder = serializers.SlugField(help_text="the rightsholder organisation's slug")
    work = serializers.UUIDField(required=False, allow_null=True, help_text="one work; omit for the whole catalog")
    purposes = serializers.ListField(child=serializers.CharField(max_length=40), max_length=20)
    territories = serializers.ListField(child=serializers.CharField(max_length=2), max_length=300, required=False)
    contexts = serializers.ListField(child=serializers.CharField(max_length=20), max_length=3, required=False)
    message = serializers.CharField(required=False, allow_blank=True, max_length=5000)


class PermissionRequestAcceptSerializer(GrantTermsSerializer):
    """Every grant term is optional: what is not sent is taken from the request."""

    response = serializers.CharField(required=False, allow_blank=True, max_length=5000)
    scope = serializers.ChoiceField(choices=Grant.Scope.choices, required=False)
    work = serializers.UUIDField(required=False, allow_null=True, help_text="grant on this work of yours instead")

    def get_fields(self) -> dict[str, serializers.Field]:
        fields = super().get_fields()
        fields["purposes"].required = False
        return fields


class PermissionRequestDeclineSerializer(serializers.Serializer):
    response = serializers.CharField(required=False, allow_blank=True, max_length=5000)


# --- activity -------------------------------------------------------------------------------


class DateOrDateTimeField(serializers.DateTimeField):
    """An ISO 8601 time, or a bare date meaning its first instant (UTC)."""

    def to_internal_value(self, value: Any) -> datetime:
        if isinstance(value, str) and len(value) == 10:
            try:
                return datetime.combine(date.fromisoformat(value), time.min, tzinfo=UTC)
            except ValueError:
                pass
        return super().to_internal_value(value)


class ActivityQuerySerializer(serializers.Serializer):
    since = DateOrDateTimeField(required=False, help_text="inclusive; default: 30 days before `until`")
    until = DateOrDateTimeField(required=False, help_text="exclusive; default: now")
    work = serializers.UUIDField(required=False, help_text="only this work of yours")

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        attrs.setdefault("until", timezone.now())
        attrs.setdefault("since", attrs["until"] - timedelta(days=30))
        if attrs["since"] >= attrs["until"]:
            raise serializers.ValidationError({"since": ["Must be before until."]})
        if attrs["until"] - attrs["since"] > timedelta(days=MAX_ACTIVITY_DAYS):
            raise serializers.ValidationError({"since": [f"The window is at most {MAX_ACTIVITY_DAYS} days."]})
        return attrs


class AccessWorkSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    external_ref = serializers.CharField()
    title = serializers.CharField()


class AccessRequesterSerializer(serializers.Serializer):
    slug = serializers.CharField()
    name = serializers.CharField()


class WorkAccessSerializer(serializers.ModelSerializer):
    work = AccessWorkSerializer(read_only=True)
    requester = AccessRequesterSerializer(read_only=True)

    class Meta:
        model = WorkAccess
        fields = ["work", "requester", "purpose", "decision", "checked_at"]


class DailyCountSerializer(serializers.Serializer):
    date = serializers.DateField()
    permitted = serializers.IntegerField()
    not_permitted = serializers.IntegerField()
    disputed = serializers.IntegerField()
    total = serializers.IntegerField()


class TopRequesterSerializer(serializers.Serializer):
    requester = serializers.CharField(help_text="organisation slug")
    name = serializers.CharField()
    accesses = serializers.IntegerField(help_text="matches of your works")
    checks = serializers.IntegerField(help_text="check calls that matched any of them")
    permitted = serializers.IntegerField()
    not_permitted = serializers.IntegerField()
    disputed = serializers.IntegerField()
    last_checked_at = serializers.DateTimeField()


class ActivitySerializer(serializers.Serializer):
    since = serializers.DateTimeField()
    until = serializers.DateTimeField()
    next = serializers.URLField(allow_null=True)
    previous = serializers.URLField(allow_null=True)
    results = WorkAccessSerializer(many=True, help_text="accesses, newest first, one page")
    daily = DailyCountSerializer(many=True, help_text="every UTC day of the window, oldest first")
    top_requesters = TopRequesterSerializer(many=True)


# --- API keys -------------------------------------------------------------------------------


class ApiKeySerializer(serializers.ModelSerializer):
    class Meta:
        model = ApiKey
        fields = [
            "id", "name", "prefix", "scopes", "quota_per_minute", "created_at", "last_used_at", "revoked_at",
            "suspended_at",
        ]


class ApiKeyCreatedSerializer(ApiKeySerializer):
    key = serializers.SerializerMethodField(help_text="the secret: shown this once, never again")

    class Meta(ApiKeySerializer.Meta):
        fields = [*ApiKeySerializer.Meta.fields, "key"]

    def get_key(self, api_key: ApiKey) -> str:
        return self.context["raw_key"]


class ApiKeyCreateSerializer(serializers.Serializer):
    name = serializers.CharField(required=False, allow_blank=True, max_length=100)
    scopes = serializers.ListField(
        child=serializers.CharField(max_length=40), required=False, max_length=len(API_KEY_SCOPES),
        help_text=f"any of {', '.join(API_KEY_SCOPES)}; default: the usual ones for your kind of organisation",
    )

