"""An organisation asks to be verified: who it is, with evidence; then it sees where the request stands."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _

from portal.forms import VerificationRequestForm
from portal.views.common import add_domain_error, organization_view
from registry.access import Actor
from registry.exceptions import KyokaError
from registry.models import Membership, Organization, VerificationRequest
from registry.services.verification import verification_request_submit

# Every member sees where the request stands; only owners state who the organisation is.
member_view = organization_view()


def latest_verification_request(organization: Organization) -> VerificationRequest | None:
    return organization.verification_requests.order_by("-created_at").first()


@member_view
def verification(request: HttpRequest, *, organization: Organization, actor: Actor) -> HttpResponse:
    latest = latest_verification_request(organization)
    is_owner = actor.role_in(organization) == Membership.Role.OWNER
    can_request = is_owner and not organization.is_verified and (
        latest is None or latest.status != VerificationRequest.Status.PENDING)
    initial = {
        "legal_name": organization.legal_name or organization.name, "country": organization.country,
        "registration_number": organization.registration_number, "website": organization.website,
        "contact_email": organization.contact_email or request.user.email,
    }
    form = VerificationRequestForm(request.POST or None, request.FILES or None, initial=initial)
    if request.method == "POST" and can_request and form.is_valid():
        data = form.cleaned_data
        try:
            verification_request_submit(
                actor=actor, organization=organization, legal_name=data["legal_name"],
                registration_number=data["registration_number"], country=data["country"],
                website=data["website"], contact_email=data["contact_email"],
                evidence=[(upload, upload.name) for upload in data["evidence"]],
            )
        except KyokaError as exc:
            add_domain_error(form, exc)
        else:
            messages.success(request, _("Your verification request is sent. A reviewer will look at it; "
                                        "you will be told by email and on your dashboard."))
            return redirect("web:verification")
    return render(request, "web/organization/verification.html", {
        "form": form, "latest": latest, "can_request": can_request, "is_owner": is_owner,
    })
