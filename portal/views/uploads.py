"""Bulk uploads: send a manifest (and a ZIP of files), watch the progress, read the error report."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from portal.forms import UploadForm
from portal.views.common import add_domain_error, organization_view
from registry.access import Actor
from registry.exceptions import KyokaError
from registry.models import BulkUpload, Membership, Organization
from registry.selectors.uploads import bulk_upload_errors_csv, bulk_upload_get, bulk_upload_list
from registry.services.uploads import bulk_upload_cancel, bulk_upload_start
from registry.uploads.storage import organization_storage_used

studio_view = organization_view(kind=Organization.Kind.RIGHTSHOLDER)
studio_manager_view = organization_view(kind=Organization.Kind.RIGHTSHOLDER, role=Membership.Role.MANAGER)
# How often the progress fragment asks again while an upload runs.
POLL_SECONDS = 1
ERRORS_SHOWN = 100
MANIFEST_TEMPLATE = (
    "external_ref,title,kind,parent_ref,identifiers,urls,file,sha256,phash,description,year,creators\r\n"
    "SERIES-1,Example series,collection,,,,,,,A series that holds episodes,2024,\r\n"
    "EP-1,Episode 1,video,SERIES-1,isan:0000-0000-3A8D-0000-Z-0000-0000-6,"
    "https://example.com/ep1;https://example.com/ep1?lang=ja,,,,,2024,Studio staff\r\n"
    "CEL-1,Key visual,image,EP-1,,https://example.com/art/cel-1.png,images/cel-1.png,,,,2024,\r\n"
)


@studio_view
def uploads(request: HttpRequest, *, organization: Organization, actor: Actor) -> HttpResponse:
    form = UploadForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        try:
            upload = bulk_upload_start(actor=actor, organization=organization, manifest=form.cleaned_data["manifest"],
                                       archive=form.cleaned_data["archive"])
        except KyokaError as exc:
            add_domain_error(form, exc)
        else:
            return redirect("web:upload_detail", upload_id=upload.pk)
    return render(request, "web/studio/uploads.html", {
        "form": form, "uploads": bulk_upload_list(organization=organization).order_by("-created_at")[:50],
        "storage_used": organization_storage_used(organization_id=organization.pk),
        "storage_quota": settings.KYOKA_STORAGE_QUOTA_BYTES, "manifest_limit": settings.KYOKA_MAX_MANIFEST_BYTES,
    })


def _progress(upload: BulkUpload) -> dict:
    total = upload.total_rows or 0
    percent = round(100 * upload.processed_rows / total) if total else (100 if upload.status == "done" else 0)
    finished = upload.status in BulkUpload.FINISHED
    return {"upload": upload, "percent": percent, "finished": finished, "poll_seconds": POLL_SECONDS,
            # The first failed rows on the page; all of them in the CSV report.
            "failed_rows": list(upload.errors.order_by("row", "pk")[:ERRORS_SHOWN]) if finished else [],
            "errors_shown": ERRORS_SHOWN}


@studio_view
def upload_template(request: HttpRequest, *, organization: Organization, actor: Actor) -> HttpResponse:
    """A manifest to start from: every column, one example row of each shape."""
    response = HttpResponse("\ufeff" + MANIFEST_TEMPLATE, content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = 'attachment; filename="kyoka-manifest-template.csv"'
    return response


@studio_view
def upload_detail(request: HttpRequest, upload_id: str, *, organization: Organization, actor: Actor) -> HttpResponse:
    upload = bulk_upload_get(organization=organization, upload_id=upload_id)
    template = "web/studio/_upload_progress.html" if request.htmx else "web/studio/upload_detail.html"
    return render(request, template, _progress(upload))


@studio_view
def upload_errors(request: HttpRequest, upload_id: str, *, organization: Organization, actor: Actor) -> HttpResponse:
    upload = bulk_upload_get(organization=organization, upload_id=upload_id)
    response = StreamingHttpResponse(bulk_upload_errors_csv(upload=upload), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="kyoka-upload-{upload.pk}-errors.csv"'
    return response


@studio_manager_view
@require_POST
def upload_cancel(request: HttpRequest, upload_id: str, *, organization: Organization, actor: Actor) -> HttpResponse:
    upload = bulk_upload_get(organization=organization, upload_id=upload_id)
    try:
        bulk_upload_cancel(actor=actor, upload=upload)
    except KyokaError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, _("Upload cancelled. Rows already committed stay registered."))
    return redirect("web:upload_detail", upload_id=upload.pk)
