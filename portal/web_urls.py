"""Routes of the web portal (studios, AI developers, everyone)."""

from django.urls import path
from django.views.i18n import set_language

from portal.views import accounts, developer, disputes, hosts, preferences, public, studio, uploads, verification

app_name = "web"

urlpatterns = [
    path("", public.landing, name="landing"),
    path("favicon.ico", public.favicon, name="favicon"),
    path("home/", public.home, name="home"),
    path("verify/", public.receipt_verify, name="receipt_verify"),
    path("i18n/setlang/", set_language, name="set_language"),
    # Accounts
    path("accounts/signup/", accounts.signup, name="signup"),
    path("accounts/signup/sent/", accounts.signup_sent, name="signup_sent"),
    path("accounts/confirm/", accounts.email_confirm_pending, name="email_confirm_pending"),
    path("accounts/confirm/<str:token>/", accounts.email_confirm, name="email_confirm"),
    path("invitations/<str:token>/", accounts.invitation, name="invitation"),
    path("accounts/login/", accounts.LoginView.as_view(), name="login"),
    path("accounts/logout/", accounts.LogoutView.as_view(), name="logout"),
    path("accounts/password-reset/", accounts.PasswordResetView.as_view(), name="password_reset"),
    path("accounts/password-reset/sent/", accounts.PasswordResetDoneView.as_view(), name="password_reset_done"),
    path("accounts/reset/<uidb64>/<token>/", accounts.PasswordResetConfirmView.as_view(),
         name="password_reset_confirm"),
    path("accounts/reset/done/", accounts.PasswordResetCompleteView.as_view(), name="password_reset_complete"),
    path("organisations/new/", accounts.organization_create_view, name="organization_create"),
    path("organisations/switch/", accounts.organization_switch, name="organization_switch"),
    path("organisation/verification/", verification.verification, name="verification"),
    path("members/", accounts.members, name="members"),
    path("members/invite/", accounts.member_invite, name="member_invite"),
    path("members/invitations/<uuid:invitation_id>/revoke/", accounts.invitation_revoke_view,
         name="invitation_revoke"),
    path("members/<int:membership_id>/role/", accounts.member_role, name="member_role"),
    # Studios
    path("studio/", studio.dashboard, name="studio_dashboard"),
    path("studio/works/", studio.catalog, name="catalog"),
    path("studio/works/new/", studio.work_register_view, name="work_register"),
    path("studio/works/<uuid:work_id>/", studio.work_detail, name="work_detail"),
    path("studio/works/<uuid:work_id>/files/", studio.work_file_add, name="work_file_add"),
    path("studio/works/<uuid:work_id>/files/<int:file_id>/", studio.work_file, name="work_file"),
    path("studio/works/<uuid:work_id>/grant/", studio.grant_create, name="grant_create"),
    path("studio/grants/", studio.grants, name="grants"),
    path("studio/grants/new/", studio.grant_create, name="grant_create_catalog"),
    path("studio/grants/<uuid:grant_id>/revoke/", studio.grant_revoke_view, name="grant_revoke"),
    path("studio/uploads/", uploads.uploads, name="uploads"),
    path("studio/uploads/template.csv", uploads.upload_template, name="upload_template"),
    path("studio/uploads/<uuid:upload_id>/", uploads.upload_detail, name="upload_detail"),
    path("studio/uploads/<uuid:upload_id>/errors.csv", uploads.upload_errors, name="upload_errors"),
    path("studio/uploads/<uuid:upload_id>/cancel/", uploads.upload_cancel, name="upload_cancel"),
    path("studio/works/<uuid:work_id>/edit/", studio.work_edit, name="work_edit"),
    path("studio/works/<uuid:work_id>/withdraw/", studio.work_withdraw_view, name="work_withdraw"),
    path("studio/activity/", studio.activity, name="activity"),
    path("studio/requests/", studio.requests_inbox, name="requests_inbox"),
    path("studio/requests/<uuid:request_id>/answer/", studio.request_answer, name="request_answer"),
    path("studio/hosts/", hosts.hosts, name="hosts"),
    path("studio/hosts/<str:host>/", hosts.host_detail, name="host_detail"),
    path("studio/hosts/<str:host>/verify/", hosts.host_verify, name="host_verify"),
    path("studio/hosts/<str:host>/remove/", hosts.host_remove_view, name="host_remove"),
    # Disputes, for their parties (studios and AI developers alike)
    path("disputes/", disputes.dispute_list, name="disputes"),
    path("disputes/new/", disputes.dispute_new, name="dispute_new"),
    path("disputes/<uuid:dispute_id>/", disputes.dispute_detail, name="dispute_detail"),
    path("disputes/<uuid:dispute_id>/comment/", disputes.dispute_comment_view, name="dispute_comment"),
    path("disputes/<uuid:dispute_id>/withdraw/", disputes.dispute_withdraw_view, name="dispute_withdraw"),
    path("disputes/<uuid:dispute_id>/evidence/<int:evidence_id>/", disputes.dispute_evidence_file,
         name="dispute_evidence"),
    # Preferences
    path("preferences/time-zone/", accounts.time_zone_set, name="time_zone_set"),
    path("preferences/mail-language/", preferences.mail_language_set, name="mail_language_set"),
    # AI developers
    path("developer/", developer.dashboard, name="developer_dashboard"),
    path("developer/keys/", developer.api_keys, name="api_keys"),
    path("developer/keys/<int:key_id>/revoke/", developer.api_key_revoke_view, name="api_key_revoke"),
    path("developer/check/", developer.console, name="console"),
    path("developer/checks/<uuid:check_id>/", developer.check_detail, name="check_detail"),
    path("developer/checks/<uuid:check_id>/receipt.<str:part>", developer.receipt_download, name="receipt_download"),
    path("developer/checks/<uuid:check_id>/results.<str:fmt>", developer.check_export, name="check_export"),
    path("developer/usage/", developer.usage, name="usage"),
    path("developer/requests/", developer.permission_requests, name="developer_requests"),
    path("developer/requests/new/", developer.permission_request_new, name="permission_request_new"),
]
