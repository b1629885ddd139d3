from django.urls import path

from registry.api import checks

app_name = "api"

urlpatterns = [
    path("checks", checks.CheckView.as_view(), name="checks"),
    path("checks/files", checks.CheckFilesView.as_view(), name="checks-files"),
    path("checks/<uuid:check_id>", checks.CheckDetailView.as_view(), name="check-detail"),
    path("receipts/verify", checks.ReceiptVerifyView.as_view(), name="receipts-verify"),
    path("purposes", checks.PurposesView.as_view(), name="purposes"),
]
