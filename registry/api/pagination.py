"""Cursor pagination for the API's lists: stable under inserts, no COUNT(*), newest first."""

from __future__ import annotations

from rest_framework.pagination import CursorPagination


class NewestFirstPagination(CursorPagination):
    ordering = "-created_at"
    page_size_query_param = "limit"
    max_page_size = 500


class LatestAccessFirstPagination(NewestFirstPagination):
    ordering = "-checked_at"
