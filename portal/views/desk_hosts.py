"""The desk's web hosts: every claim, unproven first, and a reviewer's confirmation by hand.

A reviewer confirms a host when the studio cannot publish a DNS record or a file (a host run by
a distributor, say) and has shown control some other way; the confirmation covers the host and
its subdomains, so the note should say how control was shown. Reviewers only.
"""

from __future__ import annotations

from urllib.parse import urlencode

from django import forms
from django.contrib import messages
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET, require_POST

from portal.views.desk_verification import reviewer_required
from registry.access import Actor
from registry.exceptions import KyokaError
from registry.hosts.instructions import host_problems
from registry.selectors.hosts import host_review_queue, host_state, organization_by_slug
from registry.services.hosts import host_confirm

PAGE_SIZE = 50


class HostConfirmForm(forms.Form):
    organization = forms.SlugField(label=gettext_lazy("Organisation (slug)"), max_length=80)
    host = forms.CharField(label=gettext_lazy("Host"), max_length=300)
    note = forms.CharField(label=gettext_lazy("How control was shown"), max_length=500, required=False)


@require_GET
@reviewer_required
def hosts(request: HttpRequest) -> HttpResponse:
    query = request.GET.get("q", "").strip()[:100]
    page = Paginator(host_review_queue(query=query), PAGE_SIZE).get_page(request.GET.get("page"))
    rows = [{"claim": claim, "state": host_state(claim), "problems": host_problems(claim.host, claim.last_error)}
            for claim in page]
    return render(request, "desk/hosts.html", {
        "rows": rows, "page": page, "query": query, "search_query": urlencode({"q": query}) if query else "",
        "form": HostConfirmForm(),
    })


@require_POST
@reviewer_required
def host_confirm_view(request: HttpRequest) -> HttpResponse:
    form = HostConfirmForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("Give the organisation's slug and the host."))
        return redirect("desk:hosts")
    organization = organization_by_slug(form.cleaned_data["organization"])
    if organization is None:
        messages.error(request, _("No organisation has that slug."))
        return redirect("desk:hosts")
    try:
        claim = host_confirm(actor=Actor.for_user(request.user), organization=organization,
                             host=form.cleaned_data["host"], note=form.cleaned_data["note"])
    except KyokaError as exc:
        details = " ".join(" ".join(problems) for problems in exc.fields.values())
        messages.error(request, details or exc.message)
    else:
        messages.success(request, _("%(host)s is confirmed for %(organization)s, with every name under it.")
                         % {"host": claim.host, "organization": organization.name})
    return redirect(f"{reverse('desk:hosts')}?{urlencode({'q': form.cleaned_data['host']})}")
