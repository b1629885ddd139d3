"""Web hosts in a studio's settings: claim a host, read how to prove it, ask Kyoka to look, withdraw it.

The same services as the API (registry.services.hosts) and the same wording of the
instructions (registry.hosts.instructions); the lookup runs in a worker and the page polls.
"""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from portal.views.common import add_domain_error, organization_view
from registry.access import Actor
from registry.exceptions import KyokaError, NotFound
from registry.hosts.instructions import host_instructions, host_problems
from registry.models import Membership, Organization, VerifiedHost
from registry.selectors.hosts import host_get, host_list, host_state
from registry.services.hosts import host_claim, host_remove, host_verify_request

studio_view = organization_view(kind=Organization.Kind.RIGHTSHOLDER)
studio_manager_view = organization_view(kind=Organization.Kind.RIGHTSHOLDER, role=Membership.Role.MANAGER)
# How often the status asks again while a lookup is on its way.
POLL_SECONDS = 2


class HostClaimForm(forms.Form):
    host = forms.CharField(
        label=gettext_lazy("Host name"), max_length=300,
        help_text=gettext_lazy("The host your registered URLs live on, like cdn.example.com."),
        widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false", "placeholder": "cdn.example.com"}),
    )


def _can_manage(actor: Actor, organization: Organization) -> bool:
    return actor.role_in(organization) in (Membership.Role.MANAGER, Membership.Role.OWNER)


def _claim_context(claim: VerifiedHost) -> dict:
    state = host_state(claim)
    return {
        "claim": claim, "state": state, "poll_seconds": POLL_SECONDS,
        "instructions": host_instructions(claim.host, claim.token),
        "problems": host_problems(claim.host, claim.last_error),
    }


@studio_view
def hosts(request: HttpRequest, *, organization: Organization, actor: Actor) -> HttpResponse:
    form = HostClaimForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            claim = host_claim(actor=actor, organization=organization, host=form.cleaned_data["host"])
        except KyokaError as exc:
            add_domain_error(form, exc)
        else:
            return redirect("web:host_detail", host=claim.host)
    claims = [{"claim": claim, "state": host_state(claim)} for claim in host_list(organization=organization)]
    return render(request, "portal/hosts/list.html", {
        "form": form, "claims": claims, "can_manage": _can_manage(actor, organization),
    }, status=400 if form.errors else 200)


@studio_view
def host_detail(request: HttpRequest, host: str, *, organization: Organization, actor: Actor) -> HttpResponse:
    context = _claim_context(host_get(organization=organization, host=host))
    context["can_manage"] = _can_manage(actor, organization)
    template = "portal/hosts/_status.html" if request.htmx else "portal/hosts/detail.html"
    return render(request, template, context)


@studio_manager_view
@require_POST
def host_verify(request: HttpRequest, host: str, *, organization: Organization, actor: Actor) -> HttpResponse:
    try:
        claim = host_verify_request(actor=actor, organization=organization, host=host)
    except NotFound:
        raise  # another organisation's claim, or none: a 404, as in the API
    except KyokaError as exc:
        messages.error(request, exc.message)
        return redirect("web:hosts")
    if request.htmx:
        return render(request, "portal/hosts/_status.html", {**_claim_context(claim), "can_manage": True})
    messages.info(request, _("Kyoka is looking for the proof. This page shows the result within a few seconds."))
    return redirect("web:host_detail", host=claim.host)


@studio_manager_view
@require_POST
def host_remove_view(request: HttpRequest, host: str, *, organization: Organization, actor: Actor) -> HttpResponse:
    try:
        host_remove(actor=actor, organization=organization, host=host)
    except NotFound:
        raise
    except KyokaError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, _("The claim on %(host)s is withdrawn. URLs registered on it no longer count as "
                                    "yours from the next check on.") % {"host": host})
    return redirect("web:hosts")
