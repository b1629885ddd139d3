"""Registering what another organisation already registered opens an ownership dispute, once."""

from __future__ import annotations

import io

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from registry.models import AuditEvent, Dispute, DisputeWork, SimilarityFlag, Work
from registry.services.conflicts import conflict_key, conflicts_detect
from registry.services.works import (
    do_content_file_add,
    do_work_register,
    do_work_update,
    do_work_withdraw,
)
from tests.conftest import OPERATOR
from tests.factories import make_image_bytes

pytestmark = pytest.mark.django_db

ISBN = "isbn:978-4-04-102622-9"


def sides(dispute: Dispute) -> dict[str, str]:
    return {link.side: link.work_id for link in DisputeWork.objects.filter(dispute=dispute)}


def test_same_bytes_registered_by_another_studio_open_an_ownership_dispute(studio, rival, register_image):
    original = register_image(studio, seed=1)
    copy = register_image(rival, seed=1)

    dispute = Dispute.objects.get()
    assert dispute.kind == Dispute.Kind.OWNERSHIP
    assert dispute.status == Dispute.Status.OPEN
    assert (dispute.claimant, dispute.respondent) == (studio, rival)
    assert sides(dispute) == {"claimant": original.pk, "respondent": copy.pk}
    assert dispute.conflict_key == conflict_key(original.pk, copy.pk)
    assert "the same file" in dispute.statement
    event = AuditEvent.objects.get(action="dispute.open", object_id=str(dispute.pk))
    assert event.actor == "operator:conflict-detection"
    # The exact match decides; the pair's perceptual likeness adds nothing (and raises no flag).
    assert [m["method"] for m in event.data["matches"]] == ["sha256"]
    assert not SimilarityFlag.objects.exists()


def test_a_re_encoded_jpeg_raises_a_similarity_flag_not_a_dispute(studio, rival, register_image):
    original = register_image(studio, seed=3)
    copy = register_image(rival, seed=3, fmt="JPEG", quality=70)

    assert not Dispute.objects.exists()
    flag = SimilarityFlag.objects.get()
    assert {flag.work_a_id, flag.work_b_id} == {original.pk, copy.pk}
    assert flag.work_a_id < flag.work_b_id
    assert flag.distance <= 8 and flag.status == SimilarityFlag.Status.OPEN


def test_a_different_image_opens_nothing(studio, rival, register_image):
    register_image(studio, seed=1)
    register_image(rival, seed=2)
    assert not Dispute.objects.exists()


def test_the_same_organisation_registering_twice_is_no_conflict(studio, register_image):
    register_image(studio, seed=1)
    register_image(studio, seed=1)
    assert not Dispute.objects.exists()


def test_the_dispute_opens_once_however_often_the_pair_meets_again(studio, rival, register_image):
    register_image(studio, seed=1, identifiers=[ISBN])
    copy = register_image(rival, seed=1)
    do_content_file_add(acting=OPERATOR, work=copy, fileobj=io.BytesIO(make_image_bytes(1)), filename="again.png")
    do_content_file_add(
        acting=OPERATOR, work=copy, fileobj=io.BytesIO(make_image_bytes(1, fmt="JPEG")), filename="again.jpg"
    )
    do_work_update(acting=OPERATOR, work=copy, identifiers=[ISBN])
    assert conflicts_detect(work_ids=[copy.pk]) == []

    assert Dispute.objects.count() == 1
    assert AuditEvent.objects.filter(action="dispute.open").count() == 1


def test_a_decided_pair_does_not_open_again(studio, rival, register_image, reviewer_actor):
    from registry.services.disputes import dispute_decide, dispute_start_review

    register_image(studio, seed=1)
    copy = register_image(rival, seed=1)
    dispute = Dispute.objects.get()
    dispute_start_review(actor=reviewer_actor, dispute=dispute)
    dispute_decide(actor=reviewer_actor, dispute=dispute, outcome="rejected", reason="Both licensed.")

    conflicts_detect(work_ids=[copy.pk])
    assert Dispute.objects.count() == 1


def test_identifiers_and_exact_urls_conflict_too(studio, rival, make_work):
    original = make_work(studio, identifiers=[ISBN], urls=["https://cdn.example.com/cel/1.png"])
    by_identifier = make_work(rival, identifiers=["isbn:9784041026229"])
    by_url = make_work(rival, urls=["HTTPS://CDN.example.com:443/cel/./1.png"])

    keys = set(Dispute.objects.values_list("conflict_key", flat=True))
    assert keys == {conflict_key(original.pk, by_identifier.pk), conflict_key(original.pk, by_url.pk)}


def test_a_url_under_another_studios_pattern_is_not_a_conflict(studio, rival, make_work):
    make_work(studio, urls=["https://cdn.example.com/cel/*"])
    make_work(rival, urls=["https://cdn.example.com/cel/1.png"])
    assert not Dispute.objects.exists()


def test_a_withdrawn_work_conflicts_with_nothing(studio, rival, make_work):
    original = make_work(studio, identifiers=[ISBN])
    do_work_withdraw(acting=OPERATOR, work=original)
    make_work(rival, identifiers=[ISBN])
    assert not Dispute.objects.exists()


def test_adding_a_reference_later_is_caught(studio, rival, make_work):
    make_work(studio, identifiers=[ISBN])
    later = make_work(rival)
    assert not Dispute.objects.exists()
    do_work_update(acting=OPERATOR, work=later, identifiers=[ISBN])
    assert Dispute.objects.get().respondent == rival


def test_a_registration_that_fails_leaves_no_dispute(studio, rival, make_work):
    make_work(studio, identifiers=[ISBN])
    with pytest.raises(RuntimeError), transaction.atomic():
        do_work_register(acting=OPERATOR, organization=rival, external_ref="R-1", title="Mine", identifiers=[ISBN])
        assert Dispute.objects.count() == 1  # opened in the registration's own transaction
        raise RuntimeError("the registration rolls back")
    assert not Dispute.objects.exists()
    assert not AuditEvent.objects.filter(action="dispute.open").exists()


def test_a_batch_costs_a_fixed_number_of_queries(studio, rival, make_work):
    """Bulk uploads call this per chunk: the lookups must not grow with the chunk."""
    originals = [make_work(studio, identifiers=[f"doi:10.1000/original-{n}"]) for n in range(3)]
    small = [make_work(rival, identifiers=[f"doi:10.1000/other-{n}"]) for n in range(2)]
    large = [make_work(rival, identifiers=[f"doi:10.1000/big-{n}"]) for n in range(40)]
    assert originals and not Dispute.objects.exists()

    def queries(works: list[Work]) -> int:
        with CaptureQueriesContext(connection) as captured:
            assert conflicts_detect(work_ids=[w.pk for w in works]) == []
        return len(captured)

    assert queries(large) == queries(small)
