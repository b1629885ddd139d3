"""The Django admin: raw data for reviewers, read-only. State changes only through admin actions,
which call registry's services (each authorises the reviewer and writes the audit row).

No model here can be added, changed or deleted in the admin: an organisation made there would
have no owner and no audit row, an edited slug or kind would bypass every rule of the services.
Reviewers (`Actor.is_reviewer`: staff in the "reviewer" group, or superusers) may view every
registry model without Django model permissions of their own.
"""

from django.contrib import admin, messages
from django.utils.translation import gettext_lazy as _

from registry import models
from registry.access import Actor
from registry.exceptions import KyokaError
from registry.services.api_keys import api_key_suspend
from registry.services.grants import grant_revoke_by_reviewer
from registry.services.organizations import organization_verify
from registry.services.verification import organization_suspend


def _apply_to_each(modeladmin, request, queryset, service) -> None:
    """Run an admin action's service on each selected row; a refusal is reported, not raised."""
    actor = Actor.for_user(request.user)
    for obj in queryset:
        try:
            service(actor, obj)
        except KyokaError as exc:
            modeladmin.message_user(request, f"{obj}: {exc.message}", messages.ERROR)


def _is_reviewer(request) -> bool:
    return Actor.for_user(request.user).is_reviewer


class ReadOnlyMixin:
    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def has_view_permission(self, request, obj=None):
        return _is_reviewer(request) or super().has_view_permission(request, obj)

    def has_module_permission(self, request):
        return _is_reviewer(request) or super().has_module_permission(request)


class ReadOnlyAdmin(ReadOnlyMixin, admin.ModelAdmin):
    pass


class MembershipInline(ReadOnlyMixin, admin.TabularInline):
    model = models.Membership
    extra = 0
    readonly_fields = ("user", "role", "created_at")
    can_delete = False


@admin.register(models.Organization)
class OrganizationAdmin(ReadOnlyAdmin):
    list_display = ("name", "slug", "kind", "verified_at", "suspended_at", "created_at")
    list_filter = ("kind", ("verified_at", admin.EmptyFieldListFilter))
    search_fields = ("name", "slug", "legal_name")
    inlines = [MembershipInline]
    actions = ["verify", "suspend"]

    @admin.action(description=_("Verify selected organisations (closes their pending verification requests)"))
    def verify(self, request, queryset):
        _apply_to_each(self, request, queryset,
                       lambda actor, organization: organization_verify(actor=actor, organization=organization))

    @admin.action(description=_("Suspend selected organisations"))
    def suspend(self, request, queryset):
        _apply_to_each(self, request, queryset, lambda actor, organization: organization_suspend(
            actor=actor, organization=organization, reason="Suspended by a reviewer in the admin"))


class ContentFileInline(ReadOnlyMixin, admin.TabularInline):
    model = models.ContentFile
    extra = 0
    fields = ("sha256", "media_type", "size", "width", "height", "original_name")
    readonly_fields = fields
    can_delete = False


@admin.register(models.Work)
class WorkAdmin(ReadOnlyAdmin):
    list_display = ("title", "external_ref", "owner", "kind", "status", "created_at")
    list_filter = ("kind", "status")
    search_fields = ("title", "external_ref")
    list_select_related = ("owner",)
    inlines = [ContentFileInline]


@admin.register(models.Grant)
class GrantAdmin(ReadOnlyAdmin):
    list_display = ("id", "grantor", "scope", "work", "licensee", "purposes", "valid_from", "valid_until", "revoked_at")
    list_filter = ("scope", ("revoked_at", admin.EmptyFieldListFilter))
    list_select_related = ("grantor", "work", "licensee")
    actions = ["revoke"]

    @admin.action(description=_("Revoke selected grants"))
    def revoke(self, request, queryset):
        _apply_to_each(self, request, queryset, lambda actor, grant: grant_revoke_by_reviewer(
            actor=actor, grant=grant, reason="Revoked by an administrator"))


@admin.register(models.ApiKey)
class ApiKeyAdmin(ReadOnlyAdmin):
    list_display = ("prefix", "name", "organization", "scopes", "last_used_at", "revoked_at", "suspended_at")
    actions = ["suspend"]

    @admin.action(description=_("Suspend selected keys"))
    def suspend(self, request, queryset):
        _apply_to_each(self, request, queryset, lambda actor, api_key: api_key_suspend(
            actor=actor, api_key=api_key, reason="Suspended by an administrator"))


@admin.register(models.AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin):
    list_display = ("seq", "created_at", "actor", "organization_ref", "organization", "action", "object_type",
                    "object_id")
    list_filter = ("action",)
    search_fields = ("object_id", "organization", "actor")


for model in (
    models.ContentFile, models.PerceptualHash, models.WorkURL, models.WorkIdentifier, models.Check,
    models.WorkAccess, models.PermissionRequest, models.BulkUpload, models.BulkUploadError, models.Dispute,
    models.DisputeEvent, models.EvidenceFile, models.Membership, models.VerificationRequest,
    models.SimilarityFlag, models.VerifiedHost,
):
    admin.site.register(model, ReadOnlyAdmin)
