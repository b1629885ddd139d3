"""What every portal page needs: the user's organisations and the one they are acting for."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest

from portal.middleware import TIME_ZONES
from portal.views.common import current_membership


def portal(request: HttpRequest) -> dict[str, Any]:
    if not getattr(request, "user", None) or not request.user.is_authenticated:
        return {"time_zones": TIME_ZONES}
    membership = current_membership(request)
    return {
        "time_zones": TIME_ZONES,
        "current_membership": membership,
        "current_org": membership.organization if membership else None,
        "memberships": list(request.user.memberships.select_related("organization").order_by("organization__name")),
    }
