"""The reviewers' desk: the dispute queue, dispute pages, similarity flags, verification, histories.

Reviewers only (`Actor.is_reviewer`): disputes, evidence and flags are the parties' private
papers, so a staff member who is not a reviewer is refused like anyone else. Every read is a
selector and every action one of registry's services, which checks the reviewer again; the
desk itself never queries or writes a model.

Over 400 lines only because the desk has some thirty thin views, one per page or action.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from urllib.parse import urlencode

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from portal.views.desk_verification import reviewer_required
from registry.access import Actor
from registry.exceptions import KyokaError, NotFound
from registry.models import Dispute
from registry.selectors import desk as selectors
from registry.selectors.disputes import (
    QUEUE_AGES,
    audit_history,
    dispute_comparison,
    dispute_evidence,
    dispute_freezes,
    dispute_queue,
    dispute_timeline,
)
from registry.services.api_keys import api_key_suspend
from registry.services.disputes import (
    dispute_assign,
    dispute_comment,
    dispute_decide,
    dispute_request_info,
    dispute_start_review,
)
from registry.services.similarity_flags import similarity_flag_dismiss, similarity_flag_escalate
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


def _found(read: Callable[[], object]):
    """A selector's NotFound is the page's 404."""
    try:
        return read()
    except NotFound as exc:
        raise Http404(exc.message) from exc


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


# --- the queue -----------------------------------------------------------------------------


STATUS_FILTERS = {
    "": list(Dispute.OPEN_STATUSES),
    "all": list(Dispute.Status.values),
    **{value: [value] for value in Dispute.Status.values},
}


@require_GET
@reviewer_required
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
            "reviewers": selectors.reviewer_list(),
            "pending_verifications": selectors.pending_verification_count(),
            "query": urlencode({key: value for key, value in filters.items() if value}),
        },
    )


# --- one dispute ---------------------------------------------------------------------------


@require_GET
@reviewer_required
def dispute_detail(request: HttpRequest, dispute_id: uuid.UUID) -> HttpResponse:
    dispute = _found(lambda: selectors.desk_dispute_get(dispute_id))
    comparison = dispute_comparison(dispute)
    return render(
        request,
        "desk/dispute.html",
        {
            "dispute": dispute,
            "comparison": comparison,
            "comparison_sides": [("claimant", comparison.claimant), ("respondent", comparison.respondent)],
            "timeline": dispute_timeline(dispute),
            "evidence": dispute_evidence(dispute),
            "freezing": dispute_freezes(dispute),
            "reviewers": selectors.reviewer_list(),
            "remedies": Dispute.Remedy.choices,
        },
    )


def _dispute_action(request: HttpRequest, dispute_id: uuid.UUID, action: Callable[[Dispute], object], done: str):
    dispute = _found(lambda: selectors.desk_dispute_get(dispute_id))
    _run(request, lambda: action(dispute), done)
    return redirect("desk:dispute", dispute_id=dispute.pk)


@require_POST
@reviewer_required
def dispute_assign_view(request: HttpRequest, dispute_id: uuid.UUID) -> HttpResponse:
    chosen = request.POST.get("assignee", "")
    assignee = request.user if chosen == "me" else selectors.reviewer_get(int(chosen)) if chosen.isdigit() else None
    return _dispute_action(
        request,
        dispute_id,
        lambda d: dispute_assign(actor=_actor(request), dispute=d, assignee=assignee),
        _("Assignment saved."),
    )


@require_POST
@reviewer_required
def dispute_start_review_view(request: HttpRequest, dispute_id: uuid.UUID) -> HttpResponse:
    return _dispute_action(
        request,
        dispute_id,
        lambda d: dispute_start_review(actor=_actor(request), dispute=d),
        _("Review started."),
    )


@require_POST
@reviewer_required
def dispute_comment_view(request: HttpRequest, dispute_id: uuid.UUID) -> HttpResponse:
    return _dispute_action(
        request,
        dispute_id,
        lambda d: dispute_comment(actor=_actor(request), dispute=d, message=request.POST.get("message", "")),
        _("Comment added."),
    )


@require_POST
@reviewer_required
def dispute_request_info_view(request: HttpRequest, dispute_id: uuid.UUID) -> HttpResponse:
    chosen = request.POST.get("party", "")
    party = _found(lambda: selectors.organization_get(int(chosen))) if chosen.isdigit() else None
    return _dispute_action(
        request,
        dispute_id,
        lambda d: dispute_request_info(
            actor=_actor(request), dispute=d, message=request.POST.get("message", ""), party=party
        ),
        _("Information requested; the party has been emailed."),
    )


@require_POST
@reviewer_required
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
@reviewer_required
def content_file(request: HttpRequest, file_id: int) -> FileResponse:
    record = _found(lambda: selectors.desk_content_file_get(file_id))
    inline = record.media_type in INLINE_IMAGE_TYPES
    return FileResponse(
        record.file.open("rb"),
        as_attachment=not inline,
        filename=record.original_name or record.sha256,
        content_type=record.media_type if inline else "application/octet-stream",
    )


@require_GET
@reviewer_required
def evidence_file(request: HttpRequest, evidence_id: int) -> FileResponse:
    record = _found(lambda: selectors.desk_evidence_get(evidence_id))
    return FileResponse(
        record.file.open("rb"),
        as_attachment=True,
        filename=record.original_name,
        content_type="application/octet-stream",
    )


# --- organisations -------------------------------------------------------------------------


@require_GET
@reviewer_required
def organizations(request: HttpRequest) -> HttpResponse:
    query = request.GET.get("q", "").strip()
    return render(
        request,
        "desk/organizations.html",
        {
            "pending": selectors.pending_verification_requests(),
            "query": query,
            "search_query": urlencode({"q": query}) if query else "",
            "page": Paginator(selectors.organization_search(query), PAGE_SIZE).get_page(request.GET.get("page")),
        },
    )


@require_GET
@reviewer_required
def organization_detail(request: HttpRequest, organization_id: int) -> HttpResponse:
    found = selectors.organization_file(_found(lambda: selectors.organization_get(organization_id)))
    return render(
        request,
        "desk/organization.html",
        {
            "organization": found.organization,
            "requests": found.requests,
            "members": found.members,
            "keys": found.keys,
            "disputes": found.disputes,
            "work_count": found.work_count,
        },
    )


def _organization_action(request: HttpRequest, organization_id: int, action, done: str) -> HttpResponse:
    organization = _found(lambda: selectors.organization_get(organization_id))
    _run(request, lambda: action(organization), done)
    return redirect("desk:organization", organization_id=organization.pk)


@require_POST
@reviewer_required
def verification_approve_view(request: HttpRequest, request_id: int) -> HttpResponse:
    verification = _found(lambda: selectors.verification_request_get(request_id))
    return _organization_action(
        request,
        verification.organization_id,
        lambda _org: verification_request_approve(
            actor=_actor(request), verification_request=verification, note=request.POST.get("note", "")
        ),
        _("Organisation verified."),
    )


@require_POST
@reviewer_required
def verification_reject_view(request: HttpRequest, request_id: int) -> HttpResponse:
    verification = _found(lambda: selectors.verification_request_get(request_id))
    return _organization_action(
        request,
        verification.organization_id,
        lambda _org: verification_request_reject(
            actor=_actor(request), verification_request=verification, reason=request.POST.get("reason", "")
        ),
        _("Verification rejected; the organisation has been emailed."),
    )


@require_POST
@reviewer_required
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
@reviewer_required
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
@reviewer_required
def api_key_suspend_view(request: HttpRequest, key_id: int) -> HttpResponse:
    api_key = _found(lambda: selectors.api_key_get_any(key_id))
    return _organization_action(
        request,
        api_key.organization_id,
        lambda _org: api_key_suspend(actor=_actor(request), api_key=api_key, reason=request.POST.get("reason", "")),
        _("API key suspended."),
    )


# --- history -------------------------------------------------------------------------------


def _subject(object_type: str, object_id: str) -> tuple[object | None, str]:
    """The thing whose history is shown, and a link to its desk page when it has one."""
    subject = selectors.history_subject(object_type, object_id)
    if subject is not None and object_type == "dispute":
        return subject, reverse("desk:dispute", args=[object_id])
    if subject is not None and object_type == "organization":
        return subject, reverse("desk:organization", args=[object_id])
    return subject, ""


@require_GET
@reviewer_required
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
@reviewer_required
def history_lookup(request: HttpRequest) -> HttpResponse:
    object_type = request.GET.get("type", "")
    object_id = request.GET.get("id", "").strip()
    if object_type == "organization" and object_id and not object_id.isdigit():
        organization = selectors.organization_by_slug(object_id)
        object_id = str(organization.pk) if organization else object_id
    if object_type not in HISTORY_TYPES or not object_id:
        messages.error(request, _("Choose what to look up and give its id."))
        return redirect("desk:queue")
    return redirect("desk:history", object_type=object_type, object_id=object_id)


# --- similarity flags ----------------------------------------------------------------------


@require_GET
@reviewer_required
def similarity_flags(request: HttpRequest) -> HttpResponse:
    return render(request, "desk/flags.html", {"flags": selectors.similarity_flags_open()})


def _flag_action(request: HttpRequest, flag_id: int, action: Callable, done: str) -> HttpResponse:
    flag = _found(lambda: selectors.similarity_flag_get(flag_id))
    _run(request, lambda: action(flag), done)
    return redirect("desk:flags")


@require_POST
@reviewer_required
def similarity_flag_dismiss_view(request: HttpRequest, flag_id: int) -> HttpResponse:
    return _flag_action(
        request, flag_id, lambda flag: similarity_flag_dismiss(actor=_actor(request), flag=flag), _("Flag dismissed.")
    )


@require_POST
@reviewer_required
def similarity_flag_escalate_view(request: HttpRequest, flag_id: int) -> HttpResponse:
    flag = _found(lambda: selectors.similarity_flag_get(flag_id))
    try:
        dispute = similarity_flag_escalate(
            actor=_actor(request), flag=flag, statement=request.POST.get("statement", "")
        )
    except KyokaError as exc:
        messages.error(request, exc.message)
        return redirect("desk:flags")
    messages.success(request, _("A dispute is opened from the flag; it waits in triage until you start its review."))
    return redirect("desk:dispute", dispute_id=dispute.pk)
