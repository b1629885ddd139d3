"""Reading an organisation's works: what the API and the portal list and open."""

from __future__ import annotations

import re
import uuid

from django.db.models import Prefetch, Q, QuerySet

from registry.exceptions import NotFound
from registry.matching.identifiers import InvalidIdentifier, parse_identifier
from registry.models import ContentFile, Organization, Work


def _with_references(works: QuerySet[Work]) -> QuerySet[Work]:
    # Four prefetch queries for a whole page, however many works it holds.
    return works.prefetch_related(
        "urls",
        "identifiers",
        Prefetch("files", queryset=ContentFile.objects.order_by("created_at").prefetch_related("perceptual_hashes")),
    )


def work_list(
    *,
    organization: Organization,
    kind: str | None = None,
    status: str | None = None,
    q: str | None = None,
    external_ref: str | None = None,
    parent: uuid.UUID | None = None,
    identifier: str | None = None,
) -> QuerySet[Work]:
    """The organisation's works, optionally filtered; `q` searches title and external_ref.

    `identifier`: a full scheme:value matches exactly, normalised as registration normalises it;
    anything else ("isbn:4-06", "3A8D") matches inside identifier values, so people can search
    by the part they remember.
    """
    works = Work.objects.filter(owner=organization).select_related("owner")
    if kind:
        works = works.filter(kind=kind)
    if status:
        works = works.filter(status=status)
    if external_ref:
        works = works.filter(external_ref=external_ref)
    if parent:
        works = works.filter(parent_id=parent)
    if q:
        works = works.filter(Q(title__icontains=q) | Q(external_ref__icontains=q))
    if identifier:
        works = _with_identifier(works, identifier)
    return _with_references(works)


def _with_identifier(works: QuerySet[Work], text: str) -> QuerySet[Work]:
    try:
        scheme, value = parse_identifier(text)
    except InvalidIdentifier:
        scheme, _sep, fragment = text.rpartition(":")
        matching = works.filter(identifiers__value__icontains=re.sub(r"[\s-]", "", fragment))
        if scheme:
            matching = matching.filter(identifiers__scheme=scheme.strip().lower())
        return matching.distinct()
    return works.filter(identifiers__scheme=scheme, identifiers__value=value).distinct()


def work_get(*, organization: Organization, work_id: uuid.UUID | str) -> Work:
    """One of the organisation's works. Another organisation's work is 'not found', never 'forbidden'."""
    work = _with_references(Work.objects.filter(owner=organization, pk=work_id).select_related("owner")).first()
    if work is None:
        raise NotFound("No such work.")
    return work
