"""Pages for everyone: the landing page and receipt verification."""

from __future__ import annotations

import json

from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from portal.forms import ReceiptVerifyForm
from portal.views.common import current_membership, is_rightsholder
from registry.receipts import InvalidReceipt, verify_receipt


def landing(request: HttpRequest) -> HttpResponse:
    return render(request, "web/landing.html")


def home(request: HttpRequest) -> HttpResponse:
    """Where a signed-in person lands: their organisation's dashboard."""
    if not request.user.is_authenticated:
        return redirect("web:landing")
    membership = current_membership(request)
    if membership is None:
        return redirect("web:organization_create")
    return redirect("web:studio_dashboard" if is_rightsholder(membership.organization) else "web:developer_dashboard")


def receipt_verify(request: HttpRequest) -> HttpResponse:
    """Anyone can check that a receipt was signed by this registry and has not been altered."""
    result = None
    if request.method == "POST":
        form = ReceiptVerifyForm(request.POST, request.FILES)
        if form.is_valid():
            body, signature = form.cleaned_data["body_bytes"], form.cleaned_data["signature_text"]
            try:
                kid = verify_receipt(body, signature)
            except InvalidReceipt as exc:
                result = {"valid": False, "error": str(exc)}
            else:
                try:
                    document = json.loads(body)
                except ValueError:
                    document = {}
                result = {"valid": True, "kid": kid, "document": document if isinstance(document, dict) else {}}
    else:
        form = ReceiptVerifyForm()
    return render(request, "web/receipt_verify.html", {"form": form, "result": result})
