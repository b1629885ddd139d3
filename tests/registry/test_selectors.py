"""Selectors the portal reads through: grants covering a work, daily check usage, a party's disputes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from registry.access import Actor
from registry.decisions.run import check_run
from registry.exceptions import NotFound
from registry.models import Check, Organization
from registry.selectors.checks import check_usage_daily
from registry.selectors.disputes import (
    dispute_get_for_party,
    disputes_of_party,
    works_of_others_by_reference,
)
from registry.selectors.grants import grants_covering_work
from registry.services.disputes import do_dispute_open
from registry.services.grants import do_grant_issue, do_grant_revoke
from registry.services.works import do_content_file_add, do_work_register
from tests.conftest import OPERATOR, owner_of

pytestmark = pytest.mark.django_db


def test_grants_covering_work_reach_it_from_above_and_from_the_catalog(studio, developer, make_org):
    series = do_work_register(acting=OPERATOR, organization=studio, external_ref="S", title="Series", kind="collection")
    episode = do_work_register(acting=OPERATOR, organization=studio, external_ref="E1", title="Episode 1",
        parent=series)
    sibling = do_work_register(acting=OPERATOR, organization=studio, external_ref="E2", title="Episode 2",
        parent=series)
    on_series = do_grant_issue(acting=OPERATOR, grantor=studio, scope="work", work=series, licensee=developer,
                            purposes=["train-ai"])
    on_episode = do_grant_issue(acting=OPERATOR, grantor=studio, scope="work", work=episode, licensee=None,
                             purposes=["search"])
    catalog = do_grant_issue(acting=OPERATOR, grantor=studio, scope="catalog", licensee=developer, purposes=["tdm"])
    do_grant_issue(acting=OPERATOR, grantor=studio, scope="work", work=sibling, licensee=developer, purposes=["tdm"])
    other = make_org(Organization.Kind.RIGHTSHOLDER)
    do_grant_issue(acting=OPERATOR, grantor=other, scope="catalog", licensee=developer, purposes=["tdm"])
    do_grant_revoke(acting=OPERATOR, grant=on_episode, reason="test")
    assert set(grants_covering_work(episode)) == {on_series, on_episode, catalog}
    assert set(grants_covering_work(series)) == {on_series, catalog}


def test_check_usage_daily_counts_per_utc_day(studio, developer, png_file):
    work = do_work_register(acting=OPERATOR, organization=studio, external_ref="SA", title="SA")
    content_file = do_content_file_add(acting=OPERATOR, work=work, fileobj=png_file(3), filename="a.png")
    do_grant_issue(acting=OPERATOR, grantor=studio, scope="work", work=work, licensee=developer,
        purposes=["train-genai"])
    developer_actor = Actor.for_user(owner_of(developer))
    for _ in range(2):
        check_run(actor=developer_actor, organization=developer, purpose="train-genai",
                  items=[{"sha256": content_file.sha256}, {"sha256": "0" * 64}])
    check_run(actor=developer_actor, organization=developer, purpose="train-genai",
              items=[{"sha256": content_file.sha256}])
    old = Check.objects.order_by("checked_at").first()
    Check.objects.filter(pk=old.pk).update(checked_at=timezone.now() - timedelta(days=40))
    today = timezone.now().astimezone(UTC).date()
    since = datetime.combine(today - timedelta(days=29), datetime.min.time(), tzinfo=UTC)
    rows = check_usage_daily(organization=developer, since=since)
    assert rows == [{"day": today, "checks": 2, "items": 3, "permitted": 2, "not_permitted": 0,
                     "unregistered": 1, "disputed": 0, "invalid": 0}]


def test_disputes_of_party_and_references_of_other_organisations(studio, make_org):
    rival = make_org(Organization.Kind.RIGHTSHOLDER, name="Rival")
    third = make_org(Organization.Kind.RIGHTSHOLDER, name="Third")
    own = do_work_register(acting=OPERATOR, organization=studio, external_ref="A", title="A",
                        identifiers=["isbn:978-4-06-182623-6"])
    theirs = do_work_register(acting=OPERATOR, organization=rival, external_ref="B", title="B",
                           identifiers=["isbn:978-4-06-182623-6"])
    assert works_of_others_by_reference(organization=studio, reference="isbn:9784061826236") == [theirs]
    assert works_of_others_by_reference(organization=studio, reference=str(theirs.pk)) == [theirs]
    assert works_of_others_by_reference(organization=studio, reference=str(own.pk)) == []
    assert works_of_others_by_reference(organization=studio, reference="nonsense") == []
    # The shared identifier already opened a conflict dispute between the two.
    actor = Actor.for_user(owner_of(studio))
    (conflict,) = disputes_of_party(actor=actor, organization=studio)
    assert conflict.conflict_key and {conflict.claimant, conflict.respondent} == {studio, rival}
    third_work = do_work_register(acting=OPERATOR, organization=third, external_ref="C", title="C")
    elsewhere = do_dispute_open(acting=OPERATOR, claimant=third, kind="other", statement="x", works=[theirs,
        third_work])
    assert list(disputes_of_party(actor=actor, organization=studio, status="closed")) == []
    with pytest.raises(NotFound):
        dispute_get_for_party(actor=actor, organization=studio, dispute_id=elsewhere.pk)
    assert dispute_get_for_party(actor=actor, organization=studio, dispute_id=conflict.pk) == conflict
