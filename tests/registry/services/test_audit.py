from __future__ import annotations

import itertools

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection, transaction

from registry.models import AuditEvent
from registry.models.audit import AuditImmutable
from registry.services.audit import audit_append, audit_verify
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
