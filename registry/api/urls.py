from django.http import HttpRequest, JsonResponse
from django.urls import path, re_path
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt

from registry.api import (
    activity,
    checks,
    disputes,
    grants,
    hosts,
    keys,
    permission_requests,
    snapshots,
    uploads,
    verification,
    works,
)


@csrf_exempt  # like every API view: keys send no CSRF token, and this view changes nothing
def _unknown(request: HttpRequest, **kwargs: object) -> JsonResponse:
    return JsonResponse({"error": {"code": "not_found", "message": _("Not found."), "fields": {}}}, status=404)


app_name = "api"

urlpatterns = [
    path("checks", checks.CheckView.as_view(), name="checks"),
    path("checks/files", checks.CheckFilesView.as_view(), name="checks-files"),
    path("checks/<uuid:check_id>", checks.CheckDetailView.as_view(), name="check-detail"),
    path("receipts/verify", checks.ReceiptVerifyView.as_view(), name="receipts-verify"),
    path("purposes", checks.PurposesView.as_view(), name="purposes"),
    path("licences/snapshot", snapshots.LicenceSnapshotView.as_view(), name="licences-snapshot"),
    path("disputes", disputes.DisputeListView.as_view(), name="disputes"),
    path("disputes/<uuid:dispute_id>", disputes.DisputeDetailView.as_view(), name="dispute-detail"),
    path("disputes/<uuid:dispute_id>/comments", disputes.DisputeCommentsView.as_view(), name="dispute-comments"),
    path("disputes/<uuid:dispute_id>/withdraw", disputes.DisputeWithdrawView.as_view(), name="dispute-withdraw"),
    path("disputes/<uuid:dispute_id>/assign", disputes.DisputeAssignView.as_view(), name="dispute-assign"),
    path("disputes/<uuid:dispute_id>/start-review", disputes.DisputeStartReviewView.as_view(),
         name="dispute-start-review"),
    path("disputes/<uuid:dispute_id>/request-info", disputes.DisputeRequestInfoView.as_view(),
         name="dispute-request-info"),
    path("disputes/<uuid:dispute_id>/decide", disputes.DisputeDecideView.as_view(), name="dispute-decide"),
    # The rightsholder API (works, files, grants, permission requests), activity and API keys.
    path("works", works.WorkListView.as_view(), name="works"),
    path("works/<uuid:work_id>", works.WorkDetailView.as_view(), name="work-detail"),
    path("works/<uuid:work_id>/withdraw", works.WorkWithdrawView.as_view(), name="work-withdraw"),
    path("works/<uuid:work_id>/files", works.WorkFilesView.as_view(), name="work-files"),
    path("grants", grants.GrantListView.as_view(), name="grants"),
    path("grants/<uuid:grant_id>", grants.GrantDetailView.as_view(), name="grant-detail"),
    path("grants/<uuid:grant_id>/revoke", grants.GrantRevokeView.as_view(), name="grant-revoke"),
    path("permission-requests", permission_requests.PermissionRequestListView.as_view(), name="permission-requests"),
    path(
        "permission-requests/<uuid:request_id>/accept",
        permission_requests.PermissionRequestAcceptView.as_view(),
        name="permission-request-accept",
    ),
    path(
        "permission-requests/<uuid:request_id>/decline",
        permission_requests.PermissionRequestDeclineView.as_view(),
        name="permission-request-decline",
    ),
    path("activity", activity.ActivityView.as_view(), name="activity"),
    path("uploads", uploads.BulkUploadListView.as_view(), name="uploads"),
    path("uploads/<uuid:upload_id>", uploads.BulkUploadDetailView.as_view(), name="upload-detail"),
    path("uploads/<uuid:upload_id>/errors", uploads.BulkUploadErrorsView.as_view(), name="upload-errors"),
    path("uploads/<uuid:upload_id>/cancel", uploads.BulkUploadCancelView.as_view(), name="upload-cancel"),
    path("verification-requests", verification.VerificationRequestListView.as_view(), name="verification-requests"),
    path("keys", keys.ApiKeyListView.as_view(), name="keys"),
    path("keys/<int:key_id>/revoke", keys.ApiKeyRevokeView.as_view(), name="key-revoke"),
    # Web hosts a studio proves it controls (standing for its URL registrations).
    path("hosts", hosts.HostListView.as_view(), name="hosts"),
    path("hosts/<str:host>", hosts.HostDetailView.as_view(), name="host-detail"),
    path("hosts/<str:host>/verify", hosts.HostVerifyView.as_view(), name="host-verify"),
    # Anything else under /api/v1/ (an id that is not one, a typo) is the API's JSON 404, not a web page.
    re_path(r"^.*$", _unknown, name="unknown"),
]
