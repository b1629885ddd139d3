"""Routes of the administrators' desk (staff only)."""

from django.urls import path  # noqa: F401

app_name = "desk"

urlpatterns: list = []
