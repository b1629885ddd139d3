"""API keys: shown once, stored as a SHA-256 hash, scoped, revocable."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Sequence

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from registry.access import Actor, authorize, authorize_reviewer
from registry.exceptions import Conflict, LimitReached, ValidationFailed
from registry.models import API_KEY_SCOPES, ApiKey, Membership, Organization
from registry.services.audit import audit_append

KEY_PREFIX = "kyoka"


def hash_api_key(raw_key: str) -> str:
    return hashlib.sha256(raw_key.encode()).hexdigest()


def default_scopes(organization: Organization) -> list[str]:
    if organization.kind == Organization.Kind.AI_DEVELOPER:
        return ["checks"]
    return [s for s in API_KEY_SCOPES if s != "checks"] + ["checks"]


def api_key_create(
    *, actor: Actor, organization: Organization, name: str = "", scopes: Sequence[str] | None = None
) -> tuple[ApiKey, str]:
    authorize(actor, organization, role=Membership.Role.OWNER, scope="keys")
    return do_api_key_create(acting=actor, organization=organization, name=name, scopes=scopes)


@transaction.atomic
def do_api_key_create(
    *, acting: Actor, organization: Organization, name: str = "", scopes: Sequence[str] | None = None
) -> tuple[ApiKey, str]:
    """Create a key and return it with its secret, which is never shown again."""
    scopes = list(scopes) if scopes is not None else default_scopes(organization)
    if not scopes or any(s not in API_KEY_SCOPES for s in scopes):
        raise ValidationFailed(
            _("Unknown or missing scopes."),
            fields={"scopes": [_("Choose from %(scopes)s.") % {"scopes": ", ".join(API_KEY_SCOPES)}]},
        )
    # Quotas are per organisation, so more keys buy no more work; the cap keeps key sprawl (and
    # the secrets to guard) bounded. The organisation's row lock makes two concurrent creations
    # count each other.
    Organization.objects.select_for_update().filter(pk=organization.pk).first()
    limit = settings.KYOKA_MAX_API_KEYS_PER_ORGANIZATION
    if ApiKey.objects.filter(organization=organization, revoked_at__isnull=True).count() >= limit:
        raise LimitReached(
            _("Your organisation already holds %(limit)d active API keys, the most it may; revoke one first.")
            % {"limit": limit}
        )
    prefix = secrets.token_hex(4)
    raw_key = f"{KEY_PREFIX}_{prefix}_{secrets.token_urlsafe(32)}"
    api_key = ApiKey.objects.create(
        organization=organization, name=name or f"key {prefix}", prefix=prefix,
        secret_hash=hash_api_key(raw_key), scopes=sorted(set(scopes)), created_by=acting.user_or_none,
    )
    audit_append(
        actor=acting, action="api_key.create", object_type="api_key", object_id=str(api_key.pk),
        organization=organization, data={"prefix": prefix, "scopes": api_key.scopes},
    )
    return api_key, raw_key


def api_key_revoke(*, actor: Actor, api_key: ApiKey) -> ApiKey:
    authorize(actor, api_key.organization, role=Membership.Role.OWNER, scope="keys")
    return do_api_key_revoke(acting=actor, api_key=api_key)


@transaction.atomic
def do_api_key_revoke(*, acting: Actor, api_key: ApiKey) -> ApiKey:
    api_key = ApiKey.objects.select_for_update().get(pk=api_key.pk)
    if api_key.revoked_at is not None:
        raise Conflict(_("This key is already revoked."))
    api_key.revoked_at = timezone.now()
    api_key.save(update_fields=["revoked_at"])
    audit_append(
        actor=acting, action="api_key.revoke", object_type="api_key", object_id=str(api_key.pk),
        organization=api_key.organization, data={"prefix": api_key.prefix},
    )
    return api_key


def api_key_suspend(*, actor: Actor, api_key: ApiKey, reason: str = "") -> ApiKey:
    authorize_reviewer(actor)
    return do_api_key_suspend(acting=actor, api_key=api_key, reason=reason)


@transaction.atomic
def do_api_key_suspend(*, acting: Actor, api_key: ApiKey, reason: str = "") -> ApiKey:
    """A reviewer stops a key at once (abuse, leak) without the owner's say."""
    api_key = ApiKey.objects.select_for_update().get(pk=api_key.pk)
    api_key.suspended_at = api_key.suspended_at or timezone.now()
    api_key.save(update_fields=["suspended_at"])
    audit_append(
        actor=acting, action="api_key.suspend", object_type="api_key", object_id=str(api_key.pk),
        organization=api_key.organization, data={"prefix": api_key.prefix, "reason": reason},
    )
    return api_key
