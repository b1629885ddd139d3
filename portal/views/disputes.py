"""Disputes for their parties: the list, one dispute, answering, withdrawing, and filing one by hand.

Any organisation can be a party (a studio claims a work, an AI developer doubts a grant it
holds), so these pages are not tied to one kind of organisation. Reviewers use the desk.
"""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import UploadedFile
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from portal.forms import DisputeCommentForm, DisputeForm, DisputeWithdrawForm
from portal.views.common import add_domain_error, current_membership, organization_view
from registry.access import ROLE_RANK, Actor
from registry.exceptions import KyokaError, NotFound
from registry.models import Dispute, Grant, Membership, Organization, Work
from registry.selectors.disputes import (
    dispute_comparison,
    dispute_evidence,
    dispute_freezes,
    dispute_get_for_party,
    dispute_timeline,
    disputes_of_party,
    works_of_others_by_reference,
)
from registry.selectors.grants import grant_get
from registry.selectors.works import work_get
from registry.services.disputes import dispute_comment, dispute_open, dispute_withdraw
from registry.services.evidence import Upload

party_view = organization_view()
party_manager_view = organization_view(role=Membership.Role.MANAGER)
LIST_LIMIT = 200


@party_view
def dispute_list(request: HttpRequest, *, organization: Organization, actor: Actor) -> HttpResponse:
    status = request.GET.get("status", "")
    status = status if status in ("open", "closed") else ""
    disputes = disputes_of_party(actor=actor, organization=organization, status=status)
    return render(request, "web/disputes/list.html", {"disputes": disputes[:LIST_LIMIT], "status": status})


@party_view
def dispute_detail(request: HttpRequest, dispute_id: str, *, organization: Organization,
                   actor: Actor) -> HttpResponse:
    dispute = dispute_get_for_party(actor=actor, organization=organization, dispute_id=dispute_id)
    return _render_detail(request, dispute, organization=organization, comment_form=DisputeCommentForm())


def _render_detail(request: HttpRequest, dispute: Dispute, *, organization: Organization,
                   comment_form: DisputeCommentForm, status: int = 200) -> HttpResponse:
    comparison = dispute_comparison(dispute, party=organization)
    membership = current_membership(request)
    can_act = membership is not None and ROLE_RANK[membership.role] >= ROLE_RANK[Membership.Role.MANAGER]
    return render(request, "web/disputes/detail.html", {
        "dispute": dispute,
        "is_claimant": dispute.claimant_id == organization.pk,
        "sides": [("claimant", dispute.claimant, comparison.claimant),
                  ("respondent", dispute.respondent, comparison.respondent)],
        "timeline": dispute_timeline(dispute),
        "evidence": dispute_evidence(dispute),
        "comment_form": comment_form,
        "freezing": dispute_freezes(dispute),
        "can_act": can_act and dispute.is_open,
    }, status=status)


def _uploads(files: list[UploadedFile]) -> list[Upload]:
    return [(upload, upload.name or "evidence") for upload in files]


@party_manager_view
@require_POST
def dispute_comment_view(request: HttpRequest, dispute_id: str, *, organization: Organization,
                         actor: Actor) -> HttpResponse:
    dispute = dispute_get_for_party(actor=actor, organization=organization, dispute_id=dispute_id)
    form = DisputeCommentForm(request.POST, request.FILES)
    if form.is_valid():
        try:
            dispute_comment(actor=actor, dispute=dispute, message=form.cleaned_data["message"],
                            evidence=_uploads(form.cleaned_data["evidence"]))
        except KyokaError as exc:
            add_domain_error(form, exc)
        else:
            messages.success(request, _("Your comment is added. The other party and the reviewers can read it."))
            return redirect("web:dispute_detail", dispute_id=dispute.pk)
    return _render_detail(request, dispute, organization=organization, comment_form=form, status=400)


@party_manager_view
def dispute_withdraw_view(request: HttpRequest, dispute_id: str, *, organization: Organization,
                          actor: Actor) -> HttpResponse:
    dispute = dispute_get_for_party(actor=actor, organization=organization, dispute_id=dispute_id)
    if dispute.claimant_id != organization.pk:
        raise Http404("Only the claimant withdraws a dispute.")
    form = DisputeWithdrawForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            dispute_withdraw(actor=actor, dispute=dispute, reason=form.cleaned_data["reason"])
        except KyokaError as exc:
            messages.error(request, exc.message)
        else:
            messages.success(request, _("The dispute is withdrawn. Checks of its works answer as before."))
        return redirect("web:dispute_detail", dispute_id=dispute.pk)
    return render(request, "web/disputes/withdraw.html", {"dispute": dispute, "form": form})


@party_view
def dispute_evidence_file(request: HttpRequest, dispute_id: str, evidence_id: int, *, organization: Organization,
                          actor: Actor) -> FileResponse:
    dispute = dispute_get_for_party(actor=actor, organization=organization, dispute_id=dispute_id)
    record = dispute_evidence(dispute).filter(pk=evidence_id).first()
    if record is None:
        raise Http404("No such evidence file.")
    # Always a download: evidence comes from the other party and is never rendered here.
    return FileResponse(record.file.open("rb"), as_attachment=True, filename=record.original_name,
                        content_type="application/octet-stream")


@party_manager_view
def dispute_new(request: HttpRequest, *, organization: Organization, actor: Actor) -> HttpResponse:
    """File a dispute from one of our works (naming the other side's work) or from a grant made out to us."""
    source = request.POST if request.method == "POST" else request.GET
    own_work, grant = _dispute_source(organization, work_id=source.get("work", ""), grant_id=source.get("grant", ""))
    initial = {"kind": Dispute.Kind.GRANT_VALIDITY if grant else Dispute.Kind.OWNERSHIP}
    form = DisputeForm(request.POST or None, request.FILES or None, initial=initial)
    if grant is not None:
        # The grant names the other side: its issuer, for the work it covers.
        form.fields["other_work"].required = False
        form.fields["other_work"].widget = form.fields["other_work"].hidden_widget()
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        if grant is not None:
            works: list[Work] = [grant.work]
        else:
            others = works_of_others_by_reference(organization=organization, reference=data["other_work"])
            if not others:
                form.add_error("other_work", _("No other organisation's active work has this reference."))
            works = [own_work, *others] if own_work else others
        if form.is_valid():
            try:
                dispute = dispute_open(actor=actor, claimant=organization, kind=data["kind"],
                                       statement=data["statement"], works=works,
                                       evidence=_uploads(data["evidence"]))
            except KyokaError as exc:
                add_domain_error(form, exc)
            else:
                if dispute_freezes(dispute):
                    filed = _("The dispute is filed. %(other)s is told, and a reviewer will take it up; "
                              "until it is decided, checks of its works answer disputed.")
                else:
                    filed = _("The dispute is filed. %(other)s is told, and a reviewer will take it up. Your "
                              "organisation is not verified yet, so the dispute freezes nothing until a reviewer "
                              "starts its review.")
                messages.success(request, filed % {"other": dispute.respondent.name})
                return redirect("web:dispute_detail", dispute_id=dispute.pk)
    return render(request, "web/disputes/new.html", {"form": form, "own_work": own_work, "grant": grant})


def _dispute_source(organization: Organization, *, work_id: str, grant_id: str) -> tuple[Work | None, Grant | None]:
    """What the dispute starts from: one of our works, or a grant another organisation made out to us."""
    try:
        if grant_id:
            grant = grant_get(organization=organization, grant_id=grant_id)
            if grant.grantor_id == organization.pk or grant.work is None:
                raise NotFound("Dispute a grant made out to you, for a work.")
            return None, grant
        if work_id:
            return work_get(organization=organization, work_id=work_id), None
    except (ValueError, ValidationError) as exc:  # not a UUID
        raise Http404("No such work or grant.") from exc
    return None, None
