"""A property over random registries: nothing is `permitted` without an exact reference with
standing to a work that a covering grant of its owner licenses to the requester.

The oracle below is written from DESIGN.md directly against the stored rows, not with the
decision engine's code, so the two can disagree.
"""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from registry.access import Actor
from registry.decisions.run import check_run
from registry.matching.urls import normalize_url, pattern_matches, url_host
from registry.models import ContentFile, Grant, Organization, VerifiedHost, Work, WorkIdentifier, WorkURL
from registry.purposes import purposes_cover
from registry.services.grants import grant_issue, grant_revoke
from registry.services.works import work_register
from tests.conftest import owner_of

pytestmark = pytest.mark.django_db(transaction=False)

SHAS = [f"{n:064x}" for n in range(1, 4)]
URLS = ["https://a.example/1.png", "https://cdn.a.example/2.png", "https://b.example/3.png"]
PATTERNS = ["https://a.example/*", "https://b.example/*.png$", "https://cdn.a.example/*"]
ISBNS = ["isbn:978-4-04-102622-9", "isbn:978-4-06-521925-6"]
PURPOSE_SETS = [["train-ai"], ["search"], ["all"], ["tdm"], ["train-genai"], ["ai-use"]]
HOSTS = [("a.example", True), ("a.example", False), ("cdn.a.example", False), ("b.example", True)]

registration = st.fixed_dictionaries({
    "owner": st.sampled_from(["verified", "unverified"]),
    "sha256": st.lists(st.sampled_from(SHAS), max_size=1),
    "urls": st.lists(st.sampled_from(URLS + PATTERNS), max_size=2, unique=True),
    "identifiers": st.lists(st.sampled_from(ISBNS), max_size=1),
})
grant_terms = st.fixed_dictionaries({
    "grantor": st.sampled_from(["verified", "unverified"]),
    "on": st.one_of(st.none(), st.integers(0, 5)),  # None: the whole catalog
    "licensee": st.sampled_from(["developer", "any", "other"]),
    "purposes": st.sampled_from(PURPOSE_SETS),
    "territories": st.sampled_from([[], ["JP"], ["US"]]),
    "revoked": st.booleans(),
    "expired": st.booleans(),
})


def oracle_may_permit(item: dict, developer: Organization, territory: str | None) -> bool:
    """Is there a work matched exactly, with standing, that a covering grant licenses? (DESIGN.md)"""
    now = timezone.now()
    key, value = next(iter(item.items()))
    if key == "sha256":
        work_ids = set(ContentFile.objects.filter(sha256=value).values_list("work_id", flat=True))
    elif key == "identifier":
        scheme, _, number = value.partition(":")
        work_ids = set(WorkIdentifier.objects.filter(scheme=scheme).values_list("work_id", "value"))
        work_ids = {w for w, v in work_ids if v == number.replace("-", "")}
    else:
        url = normalize_url(value)
        work_ids = {row.work_id for row in WorkURL.objects.all()
                    if (row.url == url) or (row.is_pattern and pattern_matches(row.url, url))}
    for work in Work.objects.filter(pk__in=work_ids, status=Work.Status.ACTIVE).select_related("owner"):
        owner = work.owner
        if owner.verified_at is None or owner.suspended_at is not None:
            continue
        if key == "url":
            host = url_host(normalize_url(value))
            proven = VerifiedHost.objects.filter(organization=owner, verified_at__isnull=False)
            if not any(h.host == host or (h.covers_subdomains and host.endswith("." + h.host)) for h in proven):
                continue
        for grant in Grant.objects.filter(grantor=owner):
            scoped = grant.scope == "catalog" or grant.work_id == work.pk or str(grant.work_id).replace("-", "") in (
                work.lineage
            )
            in_force = (grant.revoked_at is None or grant.revoked_at > now) and grant.valid_from <= now and (
                grant.valid_until is None or grant.valid_until > now
            )
            licensed = grant.licensee_id == developer.pk or grant.licensee_id is None
            if (scoped and in_force and licensed and purposes_cover(grant.purposes, "train-genai")
                    and (not grant.territories or territory in grant.territories)):
                return True
    return False


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    registrations=st.lists(registration, min_size=1, max_size=6),
    grants=st.lists(grant_terms, max_size=4),
    hosts=st.lists(st.sampled_from(HOSTS), max_size=2, unique=True),
    territory=st.sampled_from([None, "JP", "US"]),
)
def test_no_item_is_permitted_without_standing_and_a_covering_grant(
    registrations, grants, hosts, territory, make_org, developer,
):
    with transaction.atomic():
        studios = {"verified": make_org(), "unverified": make_org(verified=False)}
        other_developer = make_org(Organization.Kind.AI_DEVELOPER)
        actors = {name: Actor.for_user(owner_of(org)) for name, org in studios.items()}
        works = []
        for n, spec in enumerate(registrations):
            org = studios[spec["owner"]]
            work = work_register(actor=actors[spec["owner"]], organization=org, external_ref=f"W{n}", title=f"W{n}",
                                 urls=spec["urls"], identifiers=spec["identifiers"])
            for sha in spec["sha256"]:
                ContentFile.objects.create(work=work, sha256=sha)
            works.append(work)
        for host, subdomains in hosts:
            VerifiedHost.objects.get_or_create(
                organization=studios["verified"], host=host,
                defaults={"method": "reviewer", "covers_subdomains": subdomains, "verified_at": timezone.now()},
            )
        for spec in grants:
            grantor = studios[spec["grantor"]]
            own = [w for w in works if w.owner_id == grantor.pk]
            on = own[spec["on"] % len(own)] if spec["on"] is not None and own else None
            licensee = {"developer": developer, "any": None, "other": other_developer}[spec["licensee"]]
            now = timezone.now()
            made = grant_issue(
                actor=actors[spec["grantor"]], grantor=grantor, scope="work" if on else "catalog", work=on,
                licensee=licensee, purposes=spec["purposes"], territories=spec["territories"],
                valid_from=now - timedelta(days=2), valid_until=now - timedelta(days=1) if spec["expired"] else None,
            )
            if spec["revoked"]:
                grant_revoke(actor=actors[spec["grantor"]], grant=made, reason="property")

        items = [
            *({"sha256": s} for s in SHAS), *({"url": u} for u in [*URLS, "https://a.example/x/y.png"]),
            *({"identifier": i} for i in ISBNS),
        ]
        outcome = check_run(actor=Actor.for_user(owner_of(developer)), organization=developer,
                            purpose="train-genai", territory=territory, items=items)
        for item, result in zip(items, json.loads(outcome.body)["results"], strict=True):
            if result["permitted"]:
                assert oracle_may_permit(item, developer, territory), (item, result)
        transaction.set_rollback(True)
