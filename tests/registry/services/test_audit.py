from __future__ import annotations

import itertools

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection, transaction
from django.utils import timezone

from registry.models import AuditChainHead, AuditEvent, Organization
from registry.models.audit import AuditImmutable
from registry.selectors.disputes import audit_history
from registry.services.audit import audit_append, audit_event_hash, audit_verify
from registry.services.grants import do_grant_issue
from tests.conftest import OPERATOR

pytestmark = pytest.mark.django_db


def append(n: int) -> None:
    for i in range(n):
        with transaction.atomic():
            audit_append(actor=OPERATOR, action="test.event", object_type="thing", object_id=str(i), data={"i": i})


def test_events_chain_each_to_the_previous_hash(studio, developer):
    do_grant_issue(acting=OPERATOR, grantor=studio, scope="catalog", licensee=developer, purposes=["tdm"])
    events = list(AuditEvent.objects.order_by("seq"))
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    assert events[0].prev_hash == "0" * 64
    for previous, event in itertools.pairwise(events):
        assert event.prev_hash == previous.hash
    assert audit_verify().ok


def test_append_outside_a_transaction_is_refused(transactional_db):
    with pytest.raises(RuntimeError):
        audit_append(actor=OPERATOR, action="x", object_type="t", object_id="1")


def test_an_event_rolled_back_with_its_change_leaves_the_chain_intact(db):
    append(2)
    with pytest.raises(ZeroDivisionError), transaction.atomic():
        audit_append(actor=OPERATOR, action="doomed", object_type="t", object_id="x")
        1 / 0  # noqa: B018
    append(1)
    assert AuditEvent.objects.count() == 3
    assert audit_verify().ok


def test_events_cannot_be_changed_or_deleted_through_the_orm(db):
    append(1)
    event = AuditEvent.objects.get()
    event.data = {"i": 99}
    with pytest.raises(AuditImmutable):
        event.save()
    with pytest.raises(AuditImmutable):
        event.delete()
    with pytest.raises(AuditImmutable):
        AuditEvent.objects.all().update(action="x")
    with pytest.raises(AuditImmutable):
        AuditEvent.objects.all().delete()


def test_tampered_content_is_detected_at_the_exact_event(db):
    append(5)
    with connection.cursor() as cursor:
        cursor.execute("UPDATE registry_auditevent SET data = %s WHERE seq = 3", ['{"i": 42}'])
    result = audit_verify()
    assert (result.ok, result.first_broken_seq, result.events_checked) == (False, 3, 2)
    assert "hash" in result.problem


def test_a_removed_event_is_detected(db):
    append(5)
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM registry_auditevent WHERE seq = 4")
    result = audit_verify()
    assert (result.ok, result.first_broken_seq) == (False, 4)


def test_removing_the_newest_events_is_detected(db):
    append(5)
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM registry_auditevent WHERE seq = 5")
    result = audit_verify()
    assert not result.ok and result.first_broken_seq == 5


def test_a_rewritten_chain_link_is_detected(db):
    append(4)
    with connection.cursor() as cursor:
        cursor.execute("UPDATE registry_auditevent SET prev_hash = %s WHERE seq = 2", ["f" * 64])
    assert audit_verify().first_broken_seq == 2


def test_verifyaudit_command_reports_intact_and_broken(db, capsys):
    append(3)
    call_command("verifyaudit")
    assert "intact: 3 events" in capsys.readouterr().out
    with connection.cursor() as cursor:
        cursor.execute("UPDATE registry_auditevent SET actor = 'someone-else' WHERE seq = 2")
    with pytest.raises(CommandError, match="BROKEN at event 2"):
        call_command("verifyaudit")


# --- organisations by id ------------------------------------------------------------------------


def test_events_refer_to_their_organisation_by_id_and_survive_a_slug_change(studio, developer):
    grant = do_grant_issue(acting=OPERATOR, grantor=studio, scope="catalog", licensee=developer, purposes=["tdm"])
    event = AuditEvent.objects.get(action="grant.issue", object_id=str(grant.pk))
    assert (event.organization_ref_id, event.organization, event.hash_version) == (studio.pk, studio.slug, 2)
    Organization.objects.filter(pk=studio.pk).update(slug="aozora-renamed")
    history = audit_history(object_type="organization", object_id=str(studio.pk))
    assert {"organization.create", "organization.verify", "grant.issue"} <= set(history.values_list("action",
                                                                                                      flat=True))
    assert audit_verify().ok  # the slug kept in old rows is history; the chain still holds


def test_rows_hashed_before_organisation_ids_existed_still_verify(studio):
    """A version 1 row hashes its slug only; the id filled in later by migration 0007 is not part of it."""
    with transaction.atomic():
        head = AuditChainHead.objects.select_for_update().get(pk=1)
        now = timezone.now()
        fields = {"seq": head.seq + 1, "created_at": now.isoformat(), "actor": "system:legacy",
                  "organization": studio.slug, "action": "legacy.event", "object_type": "thing", "object_id": "1",
                  "data": {}, "prev_hash": head.hash}
        legacy_hash = audit_event_hash(**fields)  # the version 1 formula: no organisation id
        AuditEvent.objects.create(**{**fields, "created_at": now}, hash=legacy_hash, hash_version=1)
        AuditChainHead.objects.filter(pk=1).update(seq=fields["seq"], hash=legacy_hash)
    with connection.cursor() as cursor:  # what the migration's back-fill does
        cursor.execute("UPDATE registry_auditevent SET organization_id = %s WHERE action = 'legacy.event'",
                       [studio.pk])
    append(1)
    assert audit_verify().ok


def test_moving_a_row_to_another_organisation_breaks_the_chain(studio, make_org):
    other = make_org()
    append(1)
    with transaction.atomic():
        audit_append(actor=OPERATOR, action="test.owned", object_type="thing", object_id="x", organization=studio)
    seq = AuditEvent.objects.get(action="test.owned").seq
    with connection.cursor() as cursor:
        cursor.execute("UPDATE registry_auditevent SET organization_id = %s WHERE seq = %s", [other.pk, seq])
    result = audit_verify()
    assert (result.ok, result.first_broken_seq) == (False, seq)
