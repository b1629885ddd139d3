from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from registry.exceptions import Conflict, GrantImmutable, ValidationFailed
from registry.models import AuditEvent, Grant
from registry.services.grants import do_grant_issue, do_grant_revoke
from registry.services.works import do_work_register, do_work_withdraw
from tests.conftest import OPERATOR

pytestmark = pytest.mark.django_db


@pytest.fixture
def work(studio):
    return do_work_register(acting=OPERATOR, organization=studio, external_ref="EP-1", title="Episode 1", kind="video")


def test_issued_grant_records_its_terms_and_an_audit_event(studio, developer, work):
    until = timezone.now() + timedelta(days=30)
    grant = do_grant_issue(
        acting=OPERATOR, grantor=studio, scope="work", work=work, licensee=developer,
        purposes=["train-genai", "search"],
        territories=["jp", "US"], contexts=["research"], valid_until=until, attribution="© Aozora",
        licence_url="https://aozora.example/licence",
    )
    grant.refresh_from_db()
    assert grant.purposes == ["search", "train-genai"]
    assert grant.territories == ["JP", "US"]
    assert grant.conditions["attribution"] == "© Aozora"
    event = AuditEvent.objects.get(action="grant.issue")
    assert event.object_id == str(grant.pk) and event.data["licensee"] == developer.slug


def test_a_grant_is_never_edited(studio, developer, work):
    grant = do_grant_issue(acting=OPERATOR, grantor=studio, scope="work", work=work, licensee=developer,
        purposes=["tdm"])
    grant.purposes = ["all"]
    with pytest.raises(GrantImmutable):
        grant.save()
    with pytest.raises(GrantImmutable):
        grant.save(update_fields=["purposes"])
    grant.refresh_from_db()
    assert grant.purposes == ["tdm"]


def test_revocation_is_the_only_change_and_happens_once(studio, developer, work):
    grant = do_grant_issue(acting=OPERATOR, grantor=studio, scope="work", work=work, licensee=developer,
        purposes=["tdm"])
    revoked = do_grant_revoke(acting=OPERATOR, grant=grant, reason="contract ended")
    assert revoked.revoked_at is not None and revoked.revocation_reason == "contract ended"
    with pytest.raises(Conflict):
        do_grant_revoke(acting=OPERATOR, grant=grant)
    assert AuditEvent.objects.filter(action="grant.revoke", object_id=str(grant.pk)).count() == 1


@pytest.mark.parametrize(
    "terms,field",
    [
        ({"purposes": []}, "purposes"),
        ({"purposes": ["train-everything"]}, "purposes"),
        ({"territories": ["XX"]}, "territories"),
        ({"territories": ["JPN"]}, "territories"),
        ({"contexts": ["military"]}, "contexts"),
        ({"valid_until": timezone.now() - timedelta(days=1)}, "valid_until"),
        ({"licence_url": "javascript:alert(1)"}, "licence_url"),
    ],
)
def test_invalid_terms_are_refused_with_the_field_named(studio, developer, work, terms, field):
    kwargs = {"purposes": ["tdm"], **terms}
    with pytest.raises(ValidationFailed) as info:
        do_grant_issue(acting=OPERATOR, grantor=studio, scope="work", work=work, licensee=developer, **kwargs)
    assert field in info.value.fields
    assert not Grant.objects.exists()


def test_scope_licensee_and_work_are_checked(studio, developer, make_org, work):
    other_studio = make_org()
    foreign = do_work_register(acting=OPERATOR, organization=other_studio, external_ref="F", title="F", kind="image")
    cases = [
        ({"scope": "work", "work": None}, "work"),
        ({"scope": "work", "work": foreign}, "work"),
        ({"scope": "catalog", "work": work}, "work"),
        ({"scope": "everything"}, "scope"),
        ({"scope": "catalog", "licensee": other_studio}, "licensee"),
    ]
    for kwargs, field in cases:
        kwargs = {"licensee": developer, **kwargs}
        with pytest.raises(ValidationFailed) as info:
            do_grant_issue(acting=OPERATOR, grantor=studio, purposes=["tdm"], **kwargs)
        assert field in info.value.fields, kwargs
    do_work_withdraw(acting=OPERATOR, work=work)
    with pytest.raises(ValidationFailed):
        do_grant_issue(acting=OPERATOR, grantor=studio, scope="work", work=work, licensee=developer, purposes=["tdm"])
    assert not Grant.objects.exists()


def test_database_refuses_a_grant_whose_scope_and_work_disagree(studio, work):
    from django.db import IntegrityError, transaction

    with pytest.raises(IntegrityError), transaction.atomic():
        Grant.objects.create(grantor=studio, scope="catalog", work=work, purposes=["tdm"], valid_from=timezone.now())
