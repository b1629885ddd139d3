"""What every portal page needs: the user's organisations and the one they are acting for."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.http import HttpRequest
from django.utils import timezone

from portal.middleware import TIME_ZONES
from portal.views.common import current_membership
from registry.access import Actor
from registry.services.accounts import user_language

# How long the dashboards keep saying "verified" after a reviewer verified the organisation.
VERIFIED_NEWS_FOR = timedelta(days=14)


def portal(request: HttpRequest) -> dict[str, Any]:
    user = getattr(request, "user", None)
    # A page rendered for an API key (the API docs, say) has no person behind it.
    if not isinstance(user, AbstractBaseUser) or not user.is_authenticated:
        return {"time_zones": TIME_ZONES}
    membership = current_membership(request)
    organization = membership.organization if membership else None
    return {
        # Where the organisation's verification stands: the banner and the dashboards say it.
        "latest_verification": organization.verification_requests.order_by("-created_at").first()
        if organization and not organization.is_verified else None,
        "verified_recently": bool(organization and organization.verified_at
                                  and organization.verified_at > timezone.now() - VERIFIED_NEWS_FOR),
        "time_zones": TIME_ZONES,
        "mail_language": user_language(request.user),
        "is_reviewer": Actor.for_user(request.user).is_reviewer,  # who gets the desk link
        "current_membership": membership,
        "current_org": membership.organization if membership else None,
        "memberships": list(request.user.memberships.select_related("organization").order_by("organization__name")),
    }
