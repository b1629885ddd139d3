"""Pages for everyone: the landing page and receipt verification."""

from __future__ import annotations

from datetime import datetime

from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.templatetags.static import static
from django.utils.dateparse import parse_datetime

from portal.forms import ReceiptVerifyForm
from portal.views.common import current_membership, is_rightsholder
from registry.access import Actor
from registry.decisions.vocabulary import Decision, Reason
from registry.selectors.receipts import receipt_read


def favicon(request: HttpRequest) -> HttpResponse:
    """Browsers ask for /favicon.ico whatever the page says; send them to the icon."""
    return redirect(static("favicon.svg"), permanent=True)


def landing(request: HttpRequest) -> HttpResponse:
    return render(request, "web/landing.html")


def home(request: HttpRequest) -> HttpResponse:
    """Where a signed-in person lands: their organisation's dashboard."""
    if not request.user.is_authenticated:
        return redirect("web:landing")
    membership = current_membership(request)
    if membership is None:
        # Reviewers work on the desk; they belong to no organisation.
        return redirect("desk:queue" if Actor.for_user(request.user).is_reviewer else "web:organization_create")
    return redirect("web:studio_dashboard" if is_rightsholder(membership.organization) else "web:developer_dashboard")


def _moment(text: object) -> datetime | None:
    """A receipt's ISO time as an aware datetime, so the page shows it in the viewer's time zone."""
    return parse_datetime(text) if isinstance(text, str) else None


def _receipt_rows(document: dict) -> list[dict]:
    """The items a valid receipt answered, with the decision and reason in the reader's language."""
    rows = []
    for result in document.get("results") or []:
        if not isinstance(result, dict):
            continue
        decision, reason = result.get("decision"), result.get("reason")
        rows.append({
            "ref": result.get("ref"),
            "checked": " ".join(f"{k}: {v}" for k, v in (result.get("checked") or {}).items()),
            "decision": Decision(decision).label if decision in Decision.values else decision,
            "permitted": result.get("permitted") is True,
            "reason": Reason(reason).label if reason in Reason.values else (reason or ""),
        })
    return rows


def receipt_verify(request: HttpRequest) -> HttpResponse:
    """Anyone can check that a receipt was signed by this registry and has not been altered."""
    result = None
    if request.method == "POST":
        form = ReceiptVerifyForm(request.POST, request.FILES)
        if form.is_valid():
            reading = receipt_read(form.cleaned_data["body_bytes"], form.cleaned_data["signature_text"])
            result = {"valid": reading.valid, "error": reading.error, "kid": reading.kid,
                      "document": reading.document, "checked_at": _moment(reading.as_data().get("checked_at")),
                      "rows": _receipt_rows(reading.document)}
    else:
        form = ReceiptVerifyForm()
    return render(request, "web/receipt_verify.html", {"form": form, "result": result})
