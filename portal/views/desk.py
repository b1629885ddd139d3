"""The administrators' desk: the dispute queue, dispute pages, verification, histories.

Staff only. Every action posts to one of registry's services, which checks that the user is
a reviewer; the desk itself never writes a model.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from functools import wraps
from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.paginator import Paginator
from django.db.models import Prefetch, Q
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from registry.exceptions import KyokaError
from registry.models import (
    ApiKey,
    ContentFile,
    Dispute,
    DisputeEvent,
    EvidenceFile,
    Grant,
    Organization,
    VerificationRequest,
    Work,
)
from registry.selectors.disputes import QUEUE_AGES, audit_history, dispute_comparison, dispute_queue
from registry.access import REVIEWER_GROUP, Actor
from registry.services.api_keys import api_key_suspend
from registry.services.disputes import (
    dispute_assign,
    dispute_comment,
    dispute_decide,
    dispute_request_info,
    dispute_start_review,
)
from registry.services.verification import (
    organization_suspend,
    organization_unsuspend,
    verification_request_approve,
    verification_request_reject,
)

PAGE_SIZE = 50
# Shown in the page; anything else (SVG above all) is only ever downloaded.
INLINE_IMAGE_TYPES = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp", "image/bmp"})
HISTORY_TYPES = ("work", "grant", "organization", "dispute", "api_key")


def staff_required(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Signed-out visitors go to the login page; signed-in people who are not staff get 403."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        user = request.user
        if not user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        if not (user.is_active and user.is_staff):
            raise DjangoPermissionDenied
        return view(request, *args, **kwargs)

    return wrapper


def _actor(request: HttpRequest) -> Actor:
    return Actor.for_user(request.user)


def _run(request: HttpRequest, action: Callable[[], object], done: str) -> None:
    """Call a service and tell the reviewer how it went."""
    try:
        action()
    except KyokaError as exc:
        details = "; ".join(f"{field}: {' '.join(problems)}" for field, problems in exc.fields.items())
        messages.error(request, f"{exc.message} {details}".strip())
    else:
        messages.success(request, done)


def _reviewers():
    return (
        get_user_model()
        .objects.filter(is_active=True, is_staff=True)
        .filter(Q(is_superuser=True) | Q(groups__name=REVIEWER_GROUP))
        .distinct()
        .order_by("username")
    )


# --- the queue -----------------------------------------------------------------------------


STATUS_FILTERS = {
    "": list(Dispute.OPEN_STATUSES),
    "all": list(Dispute.Status.values),
    **{value: [value] for value in Dispute.Status.values},
}


@require_GET
@staff_required
def queue(request: HttpRequest) -> HttpResponse:
    status = request.GET.get("status", "")
    filters = {
        "status": status if status in STATUS_FILTERS else "",
        "kind": request.GET.get("kind", "") if request.GET.get("kind") in Dispute.Kind.values else "",
        "age": request.GET.get("age", "") if request.GET.get("age") in QUEUE_AGES else "",
        "assignee": request.GET.get("assignee", ""),
    }
    disputes = dispute_queue(
        statuses=STATUS_FILTERS[filters["status"]],
        kind=filters["kind"],
        age=filters["age"],
        assignee=filters["assignee"],
        me=request.user.pk,
    )
    page = Paginator(disputes, PAGE_SIZE).get_page(request.GET.get("page"))
    return render(
        request,
        "desk/queue.html",
        {
            "page": page,
            "filters": filters,
            "statuses": Dispute.Status.choices,
            "kinds": Dispute.Kind.choices,
            "ages": list(QUEUE_AGES),
            "reviewers": _reviewers(),
            "pending_verifications": VerificationRequest.objects.filter(status="pending").count(),
            "query": urlencode({key: value for key, value in filters.items() if value}),
        },
    )


# --- one dispute ---------------------------------------------------------------------------


@require_GET
@staff_required
def dispute_detail(request: HttpRequest, dispute_id: uuid.UUID) -> HttpResponse:
    dispute = get_object_or_404(
        Dispute.objects.select_related("claimant", "respondent", "assignee", "decided_by", "opened_by"),
        pk=dispute_id,
    )
    timeline = (
        DisputeEvent.objects.filter(dispute=dispute)
        .select_related("actor", "organization")
        .order_by("created_at", "pk")
    )
    comparison = dispute_comparison(dispute)
    return render(
        request,
        "desk/dispute.html",
        {
            "dispute": dispute,
            "comparison": comparison,
            "comparison_sides": [("claimant", comparison.claimant), ("respondent", comparison.respondent)],
            "timeline": timeline,
            "evidence": EvidenceFile.objects.filter(dispute=dispute).select_related("organization"),
            "reviewers": _reviewers(),
            "remedies": Dispute.Remedy.choices,
        },
    )


def _dispute_action(request: HttpRequest, dispute_id: uuid.UUID, action: Callable[[Dispute], object], done: str):
    dispute = get_object_or_404(Dispute, pk=dispute_id)
    _run(request, lambda: action(dispute), done)
    return redirect("desk:dispute", dispute_id=dispute.pk)


@require_POST
@staff_required
def dispute_assign_view(request: HttpRequest, dispute_id: uuid.UUID) -> HttpResponse:
    chosen = request.POST.get("assignee", "")
    assignee = request.user if chosen == "me" else _reviewers().filter(pk=chosen).first() if chosen.isdigit() else None
    return _dispute_action(
        request,
        dispute_id,
        lambda d: dispute_assign(actor=_actor(request), dispute=d, assignee=assignee),
        _("Assignment saved."),
    )


@require_POST
@staff_required
def dispute_start_review_view(request: HttpRequest, dispute_id: uuid.UUID) -> HttpResponse:
    return _dispute_action(
        request,
        dispute_id,
        lambda d: dispute_start_review(actor=_actor(request), dispute=d),
        _("Review started."),
    )


@require_POST
@staff_required
def dispute_comment_view(request: HttpRequest, dispute_id: uuid.UUID) -> HttpResponse:
    return _dispute_action(
        request,
        dispute_id,
        lambda d: dispute_comment(actor=_actor(request), dispute=d, message=request.POST.get("message", "")),
        _("Comment added."),
    )


@require_POST
@staff_required
def dispute_request_info_view(request: HttpRequest, dispute_id: uuid.UUID) -> HttpResponse:
    party = Organization.objects.filter(pk=request.POST.get("party") or None).first()
    return _dispute_action(
        request,
        dispute_id,
        lambda d: dispute_request_info(
            actor=_actor(request), dispute=d, message=request.POST.get("message", ""), party=party
        ),
        _("Information requested; the party has been emailed."),
    )


@require_POST
@staff_required
def dispute_decide_view(request: HttpRequest, dispute_id: uuid.UUID) -> HttpResponse:
    return _dispute_action(
        request,
        dispute_id,
        lambda d: dispute_decide(
            actor=_actor(request),
            dispute=d,
            outcome=request.POST.get("outcome", ""),
            reason=request.POST.get("reason", ""),
            remedy=request.POST.get("remedy", ""),
        ),
        _("Decision recorded and applied."),
    )


# --- files ---------------------------------------------------------------------------------


@require_GET
@staff_required
def content_file(request: HttpRequest, file_id: int) -> FileResponse:
    record = get_object_or_404(ContentFile, pk=file_id)
    if not record.file:
        raise Http404
    inline = record.media_type in INLINE_IMAGE_TYPES
    return FileResponse(
        record.file.open("rb"),
        as_attachment=not inline,
        filename=record.original_name or record.sha256,
        content_type=record.media_type if inline else "application/octet-stream",
    )


@require_GET
@staff_required
def evidence_file(request: HttpRequest, evidence_id: int) -> FileResponse:
    record = get_object_or_404(EvidenceFile, pk=evidence_id)
    return FileResponse(
        record.file.open("rb"),
        as_attachment=True,
        filename=record.original_name,
        content_type="application/octet-stream",
    )


# --- organisations -------------------------------------------------------------------------


@require_GET
@staff_required
def organizations(request: HttpRequest) -> HttpResponse:
    query = request.GET.get("q", "").strip()
    found = Organization.objects.order_by("name")
    if query:
        found = found.filter(Q(name__icontains=query) | Q(slug__icontains=query) | Q(legal_name__icontains=query))
    return render(
        request,
        "desk/organizations.html",
        {
            "pending": VerificationRequest.objects.filter(status="pending")
            .select_related("organization")
            .order_by("created_at"),
            "query": query,
            "search_query": urlencode({"q": query}) if query else "",
            "page": Paginator(found, PAGE_SIZE).get_page(request.GET.get("page")),
        },
    )


@require_GET
@staff_required
def organization_detail(request: HttpRequest, organization_id: int) -> HttpResponse:
    organization = get_object_or_404(Organization.objects.select_related("verified_by"), pk=organization_id)
    requests = (
        VerificationRequest.objects.filter(organization=organization)
        .select_related("submitted_by", "decided_by")
        .prefetch_related(Prefetch("evidence", EvidenceFile.objects.order_by("created_at")))
        .order_by("-created_at")
    )
    return render(
        request,
        "desk/organization.html",
        {
            "organization": organization,
            "requests": requests,
            "members": organization.memberships.select_related("user").order_by("role", "user__username"),
            "keys": ApiKey.objects.filter(organization=organization).order_by("-created_at"),
            "disputes": Dispute.objects.filter(Q(claimant=organization) | Q(respondent=organization))
            .select_related("claimant", "respondent")
            .order_by("-created_at")[:20],
            "work_count": Work.objects.filter(owner=organization).count(),
        },
    )


def _organization_action(request: HttpRequest, organization_id: int, action, done: str) -> HttpResponse:
    organization = get_object_or_404(Organization, pk=organization_id)
    _run(request, lambda: action(organization), done)
    return redirect("desk:organization", organization_id=organization.pk)


@require_POST
@staff_required
def verification_approve_view(request: HttpRequest, request_id: int) -> HttpResponse:
    verification = get_object_or_404(VerificationRequest, pk=request_id)
    return _organization_action(
        request,
        verification.organization_id,
        lambda _org: verification_request_approve(
            actor=_actor(request), verification_request=verification, note=request.POST.get("note", "")
        ),
        _("Organisation verified."),
    )


@require_POST
@staff_required
def verification_reject_view(request: HttpRequest, request_id: int) -> HttpResponse:
    verification = get_object_or_404(VerificationRequest, pk=request_id)
    return _organization_action(
        request,
        verification.organization_id,
        lambda _org: verification_request_reject(
            actor=_actor(request), verification_request=verification, reason=request.POST.get("reason", "")
        ),
        _("Verification rejected; the organisation has been emailed."),
    )


@require_POST
@staff_required
def organization_suspend_view(request: HttpRequest, organization_id: int) -> HttpResponse:
    return _organization_action(
        request,
        organization_id,
        lambda org: organization_suspend(
            actor=_actor(request), organization=org, reason=request.POST.get("reason", "")
        ),
        _("Organisation suspended."),
    )


@require_POST
@staff_required
def organization_unsuspend_view(request: HttpRequest, organization_id: int) -> HttpResponse:
    return _organization_action(
        request,
        organization_id,
        lambda org: organization_unsuspend(
            actor=_actor(request), organization=org, reason=request.POST.get("reason", "")
        ),
        _("Suspension lifted."),
    )


@require_POST
@staff_required
def api_key_suspend_view(request: HttpRequest, key_id: int) -> HttpResponse:
    api_key = get_object_or_404(ApiKey, pk=key_id)
    return _organization_action(
        request,
        api_key.organization_id,
        lambda _org: api_key_suspend(actor=_actor(request), api_key=api_key, reason=request.POST.get("reason", "")),
        _("API key suspended."),
    )


# --- history -------------------------------------------------------------------------------


def _subject(object_type: str, object_id: str) -> tuple[object | None, str]:
    """The thing whose history is shown, and a link to its desk page when it has one."""
    try:
        if object_type == "work":
            return Work.objects.select_related("owner").filter(pk=object_id).first(), ""
        if object_type == "grant":
            return Grant.objects.select_related("grantor", "work").filter(pk=object_id).first(), ""
        if object_type == "dispute":
            return Dispute.objects.filter(pk=object_id).first(), reverse("desk:dispute", args=[object_id])
        if object_type == "organization" and object_id.isdigit():
            return Organization.objects.filter(pk=object_id).first(), reverse("desk:organization", args=[object_id])
        if object_type == "api_key" and object_id.isdigit():
            return ApiKey.objects.filter(pk=object_id).first(), ""
    except DjangoValidationError:  # not a UUID
        pass
    return None, ""


@require_GET
@staff_required
def history(request: HttpRequest, object_type: str, object_id: str) -> HttpResponse:
    if object_type not in HISTORY_TYPES:
        raise Http404
    subject, link = _subject(object_type, object_id)
    events = audit_history(object_type=object_type, object_id=object_id)
    if subject is None and not events.exists():
        raise Http404
    return render(
        request,
        "desk/history.html",
        {
            "object_type": object_type,
            "object_id": object_id,
            "subject": subject,
            "link": link,
            "history_types": HISTORY_TYPES,
            "page": Paginator(events, PAGE_SIZE * 2).get_page(request.GET.get("page")),
        },
    )


@require_GET
@staff_required
def history_lookup(request: HttpRequest) -> HttpResponse:
    object_type = request.GET.get("type", "")
    object_id = request.GET.get("id", "").strip()
    if object_type == "organization" and object_id and not object_id.isdigit():
        organization = Organization.objects.filter(slug=object_id).first()
        object_id = str(organization.pk) if organization else object_id
    if object_type not in HISTORY_TYPES or not object_id:
        messages.error(request, _("Choose what to look up and give its id."))
        return redirect("desk:queue")
    return redirect("desk:history", object_type=object_type, object_id=object_id)
