"""Shared pieces of the portal views: the organisation a person acts for, and domain errors on forms."""

from __future__ import annotations

import csv
import functools
import gettext
from collections.abc import Callable
from typing import Any, TypeVar

import pycountry
from django import forms
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.db import connection
from django.db.models import Expression, F
from django.db.models.functions import Collate
from django.http import Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect
from django.utils.translation import get_language

from registry.access import ROLE_RANK, Actor
from registry.exceptions import KyokaError, NotFound
from registry.exceptions import PermissionDenied as KyokaPermissionDenied
from registry.models import Membership, Organization

SESSION_ORGANIZATION = "kyoka_organization"
T = TypeVar("T")


def current_membership(request: HttpRequest) -> Membership | None:
    """The membership the person acts through: the organisation chosen in the session, else their first."""
    if hasattr(request, "_kyoka_membership"):
        return request._kyoka_membership  # type: ignore[attr-defined]
    memberships = Membership.objects.filter(user=request.user).select_related("organization")
    slug = request.session.get(SESSION_ORGANIZATION)
    membership = memberships.filter(organization__slug=slug).first() if slug else None
    membership = membership or memberships.order_by("created_at").first()
    request._kyoka_membership = membership  # type: ignore[attr-defined]
    return membership


def organization_view(
    *, kind: str | None = None, role: str = Membership.Role.VIEWER
) -> Callable[[Callable[..., HttpResponse]], Callable[..., HttpResponse]]:
    """A view for members of an organisation (of `kind`, at `role` or above).

    The view receives `organization` and `actor`. A person with no organisation is sent to
    create one; a page for the other kind of organisation is a 404, a role too low a 403.
    """

    def decorate(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        @functools.wraps(view)
        def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            if not request.user.is_authenticated:
                return redirect_to_login(request.get_full_path())
            membership = current_membership(request)
            if membership is None:
                return redirect("web:organization_create")
            if kind is not None and membership.organization.kind != kind:
                raise Http404("Not a page for this organisation.")
            if ROLE_RANK[membership.role] < ROLE_RANK[role]:
                raise DjangoPermissionDenied("Your role does not allow this.")
            try:
                return view(
                    request, *args, organization=membership.organization, actor=Actor.for_user(request.user), **kwargs
                )
            except NotFound as exc:
                raise Http404(exc.message) from exc
            except KyokaPermissionDenied as exc:
                raise DjangoPermissionDenied(exc.message) from exc

        return wrapped

    return decorate


def add_domain_error(form: forms.Form, error: KyokaError) -> None:
    """Show a service's error on the form: on the fields it names, else on the form as a whole."""
    placed = False
    for field, messages in error.fields.items():
        if field in form.fields:
            for message in messages:
                form.add_error(field, message)
            placed = True
    if not placed:
        form.add_error(None, error.message)


def is_rightsholder(organization: Organization | None) -> bool:
    return organization is not None and organization.kind == Organization.Kind.RIGHTSHOLDER


@functools.cache
def _country_translation(language: str) -> gettext.NullTranslations:
    return gettext.translation("iso3166-1", pycountry.LOCALES_DIR, languages=[language], fallback=True)


def territory_name(code: str) -> str:
    """A territory's name in the active language (pycountry's ISO 3166 catalogs)."""
    country = pycountry.countries.get(alpha_2=code)
    if country is None:
        return code
    name = getattr(country, "common_name", None) or country.name
    language = (get_language() or "en").split("-")[0]
    return _country_translation(language).gettext(country.name) if language != "en" else name


def natural(field: str) -> Expression | str:
    """Order by `field` with digits by value ("sheet 2" before "sheet 10") where the database can."""
    if connection.vendor == "postgresql":
        return Collate(F(field), NATURAL_COLLATION)
    return field


# Created by migration 0010_natural_collation (PostgreSQL's ICU).
NATURAL_COLLATION = "kyoka_natural"


class _Echo:
    def write(self, value: str) -> str:
        return value


def csv_line(cells) -> str:
    """One CSV line; a cell a spreadsheet would run as a formula (= + - @) is quoted as text."""
    return csv.writer(_Echo(), lineterminator="\r\n").writerow(
        [f"'{c}" if isinstance(c, str) and c[:1] in ("=", "+", "-", "@") else c for c in cells])


def csv_download(lines, filename: str) -> StreamingHttpResponse:
    response = StreamingHttpResponse(lines, content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response
