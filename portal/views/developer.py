"""AI developer pages: API keys, the check console, receipts, usage, asking for permission."""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import UTC, datetime, time, timedelta

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from portal.forms import PURPOSE_CHOICES, ApiKeyForm, CheckConsoleForm, PermissionRequestForm, split_lines
from portal.views.common import add_domain_error, organization_view
from registry.access import Actor
from registry.decisions.run import check_body, check_run
from registry.exceptions import KyokaError
from registry.models import Membership, Organization, Work
from registry.quotas import check_quota_charge
from registry.selectors.api_keys import api_key_get, api_key_list
from registry.selectors.checks import check_get, check_list, check_usage_daily
from registry.selectors.grants import grant_list
from registry.selectors.organizations import organization_named
from registry.selectors.permission_requests import permission_request_list
from registry.services.api_keys import api_key_create, api_key_revoke, default_scopes
from registry.services.permission_requests import permission_request_create

DEVELOPER = Organization.Kind.AI_DEVELOPER
developer_view = organization_view(kind=DEVELOPER)
manager_view = organization_view(kind=DEVELOPER, role=Membership.Role.MANAGER)
# Studios use keys too (registering works, bulk uploads): key pages are for any organisation's owners.
key_owner_view = organization_view(role=Membership.Role.OWNER)
_HEX = re.compile(r"[0-9a-fA-F]+")


@developer_view
def dashboard(request: HttpRequest, *, organization: Organization, actor: Actor) -> HttpResponse:
    return render(request, "web/developer/dashboard.html", {
        "recent_checks": check_list(organization=organization)[:10],
        "grants": grant_list(organization=organization, in_force=True).filter(
            licensee=organization).select_related("work")[:10],
        "requests": permission_request_list(organization=organization).filter(
            requester=organization).order_by("-created_at")[:5],
    })


@key_owner_view
def api_keys(request: HttpRequest, *, organization: Organization, actor: Actor) -> HttpResponse:
    created = None
    form = ApiKeyForm(request.POST or None, initial={"scopes": default_scopes(organization)},
                      organization_kind=organization.kind)
    if request.method == "POST" and form.is_valid():
        try:
            key, secret = api_key_create(
                actor=actor, organization=organization, name=form.cleaned_data["name"],
                scopes=form.cleaned_data["scopes"],
            )
        except KyokaError as exc:
            add_domain_error(form, exc)
        else:
            created = {"key": key, "secret": secret}
            form = ApiKeyForm(initial={"scopes": default_scopes(organization)}, organization_kind=organization.kind)
    return render(request, "web/developer/api_keys.html", {
        "keys": api_key_list(actor=actor, organization=organization).order_by("-created_at"), "created": created,
        "form": form,
    })


@key_owner_view
@require_POST
def api_key_revoke_view(request: HttpRequest, key_id: int, *, organization: Organization,
                        actor: Actor) -> HttpResponse:
    key = api_key_get(organization=organization, key_id=key_id)
    api_key_revoke(actor=actor, api_key=key)
    messages.success(request, _("Key %(prefix)s… revoked.") % {"prefix": key.prefix})
    return redirect("web:api_keys")


def _raw_item(line: str) -> dict[str, str]:
    """Which kind of reference a pasted line is: the API's item keys, decided by its shape."""
    if _HEX.fullmatch(line) and len(line) == 64:
        return {"sha256": line, "ref": line[:16] + "…"}
    if _HEX.fullmatch(line) and len(line) == 16:
        return {"phash": line, "ref": line}
    if "://" in line:
        return {"url": line, "ref": line}
    if ":" in line:
        return {"identifier": line, "ref": line}
    return {"sha256": line, "ref": line}


def _readable(body: bytes) -> dict:
    """A receipt body for the page: each result next to the terms of the grants it rests on."""
    result = json.loads(body)
    grants = result.get("grants") or {}
    for row in result["results"]:
        row["grant_terms"] = [grants[grant_id] for grant_id in row.get("grants", ()) if grant_id in grants]
    return result


@developer_view
def console(request: HttpRequest, *, organization: Organization, actor: Actor) -> HttpResponse:
    """Paste references or drop files; see each decision; download the signed receipt."""
    form = CheckConsoleForm(request.POST or None, request.FILES or None)
    result = None
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        items = [_raw_item(line) for line in split_lines(data["items"])] if data["items"].strip() else None
        try:
            # The same quota as the API's: per organisation, by the work the check asks for.
            check_quota_charge(organization_id=organization.pk, items=items, uploads=data["files"])
            outcome = check_run(
                actor=actor, organization=organization, purpose=data["purpose"],
                territory=data["territory"] or None, context=data["context"], items=items,
                uploads=data["files"],
            )
        except KyokaError as exc:
            add_domain_error(form, exc)
        else:
            result = _readable(outcome.body)
            result["check"] = outcome.check
    template = "web/developer/_console_result.html" if request.htmx and result else "web/developer/console.html"
    return render(request, template, {"form": form, "result": result,
                                      "verified": organization.is_verified})


@developer_view
def check_detail(request: HttpRequest, check_id: str, *, organization: Organization, actor: Actor) -> HttpResponse:
    check = check_get(organization=organization, check_id=check_id)
    result = _readable(check_body(check))
    result["check"] = check
    return render(request, "web/developer/check_detail.html", {"result": result})


@developer_view
def receipt_download(request: HttpRequest, check_id: str, part: str, *, organization: Organization,
                     actor: Actor) -> HttpResponse:
    """The receipt exactly as signed: the body bytes, the detached signature, or both in one JSON file."""
    check = check_get(organization=organization, check_id=check_id)
    body = check_body(check)
    if part == "body":
        response = HttpResponse(body, content_type="application/json")
        filename = f"kyoka-receipt-{check.pk}.json"
    elif part == "signature":
        response = HttpResponse(check.signature, content_type="text/plain")
        filename = f"kyoka-receipt-{check.pk}.sig"
    else:
        raise Http404("No such part.")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    response["Receipt-Signature"] = check.signature
    return response


EXPORT_COLUMNS = ("index", "ref", "checked", "decision", "permitted", "reason", "works")


@developer_view
def check_export(request: HttpRequest, check_id: str, fmt: str, *, organization: Organization,
                 actor: Actor) -> HttpResponse:
    """One line per item of a check: what was checked and the answer, as CSV or JSON (the receipt is the proof)."""
    check = check_get(organization=organization, check_id=check_id)
    rows = [{
        "index": r.get("index"), "ref": r.get("ref", ""),
        "checked": " ".join(f"{k}={v}" for k, v in (r.get("checked") or {}).items()),
        "decision": r.get("decision"), "permitted": r.get("permitted") is True, "reason": r.get("reason", ""),
        "works": "; ".join(m.get("work", "") for m in r.get("matches") or []),
    } for r in json.loads(check_body(check))["results"]]
    if fmt == "json":
        response = HttpResponse(json.dumps(rows, ensure_ascii=False, indent=2), content_type="application/json")
    elif fmt == "csv":
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=EXPORT_COLUMNS, lineterminator="\r\n")
        writer.writeheader()
        # A ref starting with = + - @ would be a formula in a spreadsheet: quote it as text.
        writer.writerows({**row, "ref": f"'{row['ref']}" if str(row["ref"])[:1] in "=+-@" else row["ref"]}
                         for row in rows)
        response = HttpResponse("\ufeff" + out.getvalue(), content_type="text/csv; charset=utf-8")
    else:
        raise Http404("No such format.")
    response["Content-Disposition"] = f'attachment; filename="kyoka-check-{check.pk}.{fmt}"'
    return response


@developer_view
def usage(request: HttpRequest, *, organization: Organization, actor: Actor) -> HttpResponse:
    since = datetime.combine((timezone.now() - timedelta(days=29)).date(), time.min, tzinfo=UTC)
    page = Paginator(check_list(organization=organization), 50).get_page(request.GET.get("page"))
    return render(request, "web/developer/usage.html", {
        "rows": check_usage_daily(organization=organization, since=since), "page": page,
    })


@developer_view
def permission_requests(request: HttpRequest, *, organization: Organization, actor: Actor) -> HttpResponse:
    sent = permission_request_list(organization=organization).filter(requester=organization).select_related(
        "work").order_by("-created_at")
    return render(request, "web/developer/requests.html", {"requests": sent[:100]})


@manager_view
def permission_request_new(request: HttpRequest, *, organization: Organization, actor: Actor) -> HttpResponse:
    """Ask one studio: for one of its works (from a check result), or for its whole catalog (chosen here).

    A request about a work goes to that work's owner and is about that work only; the page never
    lets another studio be picked for it, and never turns it into a whole-catalog request.
    """
    work_id = (request.POST or request.GET).get("work", "")
    work = None
    if work_id:
        work = Work.objects.filter(pk=work_id, status=Work.Status.ACTIVE).select_related("owner").first() \
            if _is_uuid(work_id) else None
        if work is None:
            raise Http404("No such work.")
    rightsholders = [(o.slug, o.name) for o in Organization.objects.filter(
        kind=Organization.Kind.RIGHTSHOLDER, verified_at__isnull=False).order_by("name")]
    purpose = request.GET.get("purpose", "train-genai")
    initial = {"rightsholder": request.GET.get("rightsholder", ""), "work": work_id,
               "purposes": [purpose] if purpose in dict(PURPOSE_CHOICES) else []}
    form = PermissionRequestForm(request.POST or None, rightsholders=rightsholders, about_work=work is not None,
                                 initial=initial)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            rightsholder = work.owner if work else organization_named(
                data["rightsholder"], field="rightsholder", kind=Organization.Kind.RIGHTSHOLDER)
            permission_request_create(
                actor=actor, requester=organization, rightsholder=rightsholder, work=work,
                purposes=data["purposes"], territories=data["territories"], contexts=data["contexts"],
                message=data["message"],
            )
        except KyokaError as exc:
            add_domain_error(form, exc)
        else:
            messages.success(request, _("Your request has been sent to %(studio)s.") % {"studio": rightsholder.name})
            return redirect("web:developer_requests")
    return render(request, "web/developer/request_new.html", {"form": form, "work": work})


def _is_uuid(value: str) -> bool:
    return bool(re.fullmatch(r"[0-9a-fA-F-]{32,36}", value or ""))
