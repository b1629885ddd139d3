"""The desk's verification queue: who asked to be verified, with what evidence, and the reviewer's answer.

Reviewers only (not every staff member): the evidence is an organisation's private papers. The
verify and reject buttons post to the desk's verification actions, which call the services.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps

from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.db.models import Prefetch
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from registry.access import Actor
from registry.models import EvidenceFile, VerificationRequest


def reviewer_required(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    @wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        if not (request.user.is_active and Actor.for_user(request.user).is_reviewer):
            raise PermissionDenied
        return view(request, *args, **kwargs)

    return wrapper


@require_GET
@reviewer_required
def verification_queue(request: HttpRequest) -> HttpResponse:
    pending = (
        VerificationRequest.objects.filter(status=VerificationRequest.Status.PENDING)
        .select_related("organization", "submitted_by")
        .prefetch_related(Prefetch("evidence", EvidenceFile.objects.order_by("created_at")))
        .order_by("created_at")
    )
    decided = (
        VerificationRequest.objects.exclude(status=VerificationRequest.Status.PENDING)
        .select_related("organization", "decided_by")
        .order_by("-decided_at")[:20]
    )
    return render(request, "desk/verification/queue.html", {"pending": pending, "decided": decided})
