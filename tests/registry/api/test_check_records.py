"""A check's record is handed to PostgreSQL before the answer leaves and confirmed after it
(registry.decisions.run.PendingRecord): committed without this process reading the reply,
visible to every reader once the response is closed, and never leaving a connection behind in
pipeline mode.

These tests run in autocommit (transaction=True): inside a test's transaction the record is
written the ordinary way, which every other check test covers."""

from __future__ import annotations

import logging
import time

import psycopg
import pytest
from django.core.signals import request_finished
from django.db import connection

from registry.access import Actor
from registry.decisions.run import PendingRecord, check_run
from registry.models import Check, WorkAccess
from registry.services.grants import do_grant_issue
from registry.services.works import do_work_register
from tests.conftest import OPERATOR

pytestmark = pytest.mark.django_db(transaction=True)

ISBN = "isbn:978-4-04-102622-9"


def other_connection() -> psycopg.Connection:
    """A reader that is not this test's Django connection."""
    settings = connection.settings_dict
    return psycopg.connect(host=settings["HOST"], port=settings["PORT"] or 5432, dbname=settings["NAME"],
                           user=settings["USER"], password=settings["PASSWORD"] or None, autocommit=True)


def in_pipeline() -> bool:
    return connection.connection.pgconn.pipeline_status != psycopg.pq.PipelineStatus.OFF


@pytest.fixture
def registered(studio, developer):
    work = do_work_register(acting=OPERATOR, organization=studio, external_ref="R-1", title="Cel", kind="image",
                            identifiers=[ISBN])
    do_grant_issue(acting=OPERATOR, grantor=studio, scope="work", work=work, licensee=developer,
                   purposes=["train-ai"])
    return work


def test_an_api_check_is_recorded_once_its_response_is_closed(client_for, developer, registered):
    response = client_for(developer, ["checks"]).post(
        "/api/v1/checks", {"purpose": "train-genai", "items": [{"identifier": ISBN}, {"sha256": "d" * 64}]},
        format="json")
    assert response.status_code == 200
    check_id = response.json()["check_id"]
    with other_connection() as reader:
        assert reader.execute("SELECT item_count, permitted_count, unregistered_count FROM registry_check "
                              "WHERE id = %s", [check_id]).fetchone() == (2, 1, 1)
        assert reader.execute("SELECT work_id, decision FROM registry_workaccess WHERE check_record_id = %s",
                              [check_id]).fetchall() == [(registered.id, "permitted")]
    again = client_for(developer, ["checks"]).get(f"/api/v1/checks/{check_id}")
    assert again.content == response.content and again["Receipt-Signature"] == response["Receipt-Signature"]
    assert not in_pipeline()  # the connection left pipeline mode


def test_the_handoff_commits_without_anyone_reading_the_reply(developer, registered):
    outcome = check_run(actor=Actor.for_user(developer.memberships.get().user), organization=developer,
                        purpose="train-ai", items=[{"identifier": ISBN}], record_later=True)
    assert outcome.record_confirm is not None
    try:
        with other_connection() as reader:
            deadline = time.monotonic() + 5
            while not reader.execute("SELECT 1 FROM registry_check WHERE id = %s", [outcome.check.pk]).fetchone():
                assert time.monotonic() < deadline, "the record was not committed before its reply was read"
                time.sleep(0.01)
    finally:
        outcome.record_confirm()
    assert WorkAccess.objects.filter(check_record_id=outcome.check.pk).count() == 1


def test_a_failed_handoff_is_logged_and_written_again_without_raising(caplog, developer):
    connection.ensure_connection()
    pending = PendingRecord.send(connection.alias, "INSERT INTO registry_no_such_table VALUES (%s)", [1])
    with caplog.at_level(logging.ERROR, logger="registry.decisions.run"):
        pending.confirm()
    assert [r.getMessage() for r in caplog.records] == [
        "A check record handed over before the answer failed; writing it again",
        "Writing the check record again failed too",
    ]
    assert not in_pipeline()
    assert Check.objects.count() == 0  # and the connection answers as usual


def test_the_end_of_the_request_confirms_what_no_response_did(developer, registered):
    outcome = check_run(actor=Actor.for_user(developer.memberships.get().user), organization=developer,
                        purpose="train-ai", items=[{"identifier": ISBN}], record_later=True)
    assert in_pipeline()
    request_finished.send(sender=None)
    assert not in_pipeline()
    assert Check.objects.filter(pk=outcome.check.pk).exists()


def test_inside_a_transaction_the_record_is_written_at_once(developer, registered):
    from django.db import transaction

    with transaction.atomic():
        outcome = check_run(actor=Actor.for_user(developer.memberships.get().user), organization=developer,
                            purpose="train-ai", items=[{"identifier": ISBN}], record_later=True)
        assert outcome.record_confirm is None
        assert Check.objects.filter(pk=outcome.check.pk).exists()
