"""Routes of the reviewers' desk (reviewers only)."""

from django.urls import path

from portal.views import desk, desk_hosts, desk_verification

app_name = "desk"

urlpatterns = [
    path("", desk.queue, name="queue"),
    path("disputes/<uuid:dispute_id>/", desk.dispute_detail, name="dispute"),
    path("disputes/<uuid:dispute_id>/assign", desk.dispute_assign_view, name="dispute-assign"),
    path("disputes/<uuid:dispute_id>/start-review", desk.dispute_start_review_view, name="dispute-start-review"),
    path("disputes/<uuid:dispute_id>/comment", desk.dispute_comment_view, name="dispute-comment"),
    path("disputes/<uuid:dispute_id>/request-info", desk.dispute_request_info_view, name="dispute-request-info"),
    path("disputes/<uuid:dispute_id>/decide", desk.dispute_decide_view, name="dispute-decide"),
    path("files/<int:file_id>", desk.content_file, name="content-file"),
    path("evidence/<int:evidence_id>", desk.evidence_file, name="evidence-file"),
    path("organizations/", desk.organizations, name="organizations"),
    path("organizations/<int:organization_id>/", desk.organization_detail, name="organization"),
    path("organizations/<int:organization_id>/suspend", desk.organization_suspend_view, name="organization-suspend"),
    path(
        "organizations/<int:organization_id>/unsuspend", desk.organization_unsuspend_view, name="organization-unsuspend"
    ),
    path("verification/", desk_verification.verification_queue, name="verification-queue"),
    path("verification/<int:request_id>/approve", desk.verification_approve_view, name="verification-approve"),
    path("verification/<int:request_id>/reject", desk.verification_reject_view, name="verification-reject"),
    path("keys/<int:key_id>/suspend", desk.api_key_suspend_view, name="api-key-suspend"),
    path("flags/", desk.similarity_flags, name="flags"),
    path("flags/<int:flag_id>/dismiss", desk.similarity_flag_dismiss_view, name="flag-dismiss"),
    path("flags/<int:flag_id>/escalate", desk.similarity_flag_escalate_view, name="flag-escalate"),
    path("history/", desk.history_lookup, name="history-lookup"),
    path("history/<str:object_type>/<str:object_id>/", desk.history, name="history"),
    path("hosts/", desk_hosts.hosts, name="hosts"),
    path("hosts/confirm", desk_hosts.host_confirm_view, name="host-confirm"),
]
