"""A conflict answers `disputed` until a reviewer decides; each decision has its effects, audited."""

from __future__ import annotations

import pytest

from registry.exceptions import Conflict, ValidationFailed
from registry.models import AuditEvent, Dispute, Grant, Work
from registry.services.audit import audit_verify
from registry.services.disputes import dispute_decide, dispute_open, dispute_start_review
from registry.services.grants import do_grant_issue
from registry.services.works import do_work_register
from tests.conftest import OPERATOR
from tests.registry.disputes.conftest import owner_actor

pytestmark = pytest.mark.django_db


@pytest.fixture
def conflict(studio, rival, developer, register_image):
    """The studio's cel, the rival's copy of it, a grant from each to the developer, the dispute."""
    original = register_image(studio, seed=1)
    copy = register_image(rival, seed=1)
    studio_grant = do_grant_issue(
        acting=OPERATOR, grantor=studio, scope="catalog", licensee=developer, purposes=["train-genai"]
    )
    rival_grant = do_grant_issue(
        acting=OPERATOR, grantor=rival, scope="work", work=copy, licensee=developer, purposes=["train-genai"]
    )
    return {
        "original": original,
        "copy": copy,
        "studio_grant": studio_grant,
        "rival_grant": rival_grant,
        "dispute": Dispute.objects.get(),
    }


def sha256_of(work: Work) -> str:
    return work.files.get().sha256


def decision_for(check, work: Work) -> dict:
    _, body = check([{"sha256": sha256_of(work)}])
    return body["results"][0]


def reviewed(dispute: Dispute, reviewer_actor) -> Dispute:
    return dispute_start_review(actor=reviewer_actor, dispute=dispute)


def actions_after(seq: int) -> list[tuple[str, str, str]]:
    return list(AuditEvent.objects.filter(seq__gt=seq).values_list("action", "object_type", "actor"))


def last_seq() -> int:
    return AuditEvent.objects.order_by("-seq").values_list("seq", flat=True).first() or 0


def test_checks_answer_disputed_until_a_reviewer_decides(conflict, check, reviewer_actor):
    assert decision_for(check, conflict["original"])["decision"] == "disputed"
    assert decision_for(check, conflict["original"])["reason"] == "dispute_open"

    dispute = reviewed(conflict["dispute"], reviewer_actor)
    assert decision_for(check, conflict["original"])["decision"] == "disputed"

    dispute_decide(actor=reviewer_actor, dispute=dispute, outcome="upheld", reason="Studio's art.", remedy="transfer")
    result = decision_for(check, conflict["original"])
    assert result["decision"] == "permitted"
    assert {m["owner"] for m in result["matches"]} == {conflict["original"].owner.slug}


def test_upheld_with_transfer_gives_the_copy_to_the_claimant_and_revokes_the_rivals_grants(
    conflict, reviewer_actor, reviewer, studio, rival
):
    dispute = reviewed(conflict["dispute"], reviewer_actor)
    before = last_seq()

    dispute = dispute_decide(
        actor=reviewer_actor, dispute=dispute, outcome="upheld", reason="Registered first, model sheets.",
        remedy="transfer",
    )

    copy = Work.objects.get(pk=conflict["copy"].pk)
    assert copy.owner == studio and copy.status == "active" and copy.parent is None
    assert Grant.objects.get(pk=conflict["rival_grant"].pk).revoked_at is not None
    assert Grant.objects.get(pk=conflict["studio_grant"].pk).revoked_at is None
    assert (dispute.status, dispute.remedy, dispute.decided_by) == ("upheld", "transfer", reviewer)
    label = reviewer_actor.label
    assert actions_after(before) == [
        ("grant.revoke", "grant", label),
        ("work.transfer", "work", label),
        ("dispute.decide", "dispute", label),
    ]
    decide = AuditEvent.objects.get(action="dispute.decide")
    assert decide.data["effects"] == {
        "withdrawn": [], "transferred": [str(copy.pk)], "grants_revoked": [str(conflict["rival_grant"].pk)],
    }
    transfer = AuditEvent.objects.get(action="work.transfer")
    assert (transfer.data["from"], transfer.data["to"]) == (rival.slug, studio.slug)
    assert audit_verify().ok


def test_upheld_with_withdrawal_withdraws_the_copy_and_revokes_its_grants(conflict, check, reviewer_actor):
    dispute = reviewed(conflict["dispute"], reviewer_actor)
    before = last_seq()

    dispute_decide(actor=reviewer_actor, dispute=dispute, outcome="upheld", reason="A copy.", remedy="withdraw")

    assert Work.objects.get(pk=conflict["copy"].pk).status == "withdrawn"
    assert Work.objects.get(pk=conflict["original"].pk).status == "active"
    assert Grant.objects.get(pk=conflict["rival_grant"].pk).revoked_at is not None
    assert [a for a, _, _ in actions_after(before)] == ["grant.revoke", "work.withdraw", "dispute.decide"]
    assert decision_for(check, conflict["original"])["decision"] != "disputed"


def test_rejected_withdraws_the_claimants_registration_and_revokes_its_grants_for_it(
    studio, rival, developer, make_work, reviewer_actor
):
    ISBN = "isbn:978-4-04-102622-9"
    first = make_work(studio, identifiers=[ISBN])
    second = make_work(rival, identifiers=[ISBN])
    on_first = do_grant_issue(acting=OPERATOR, grantor=studio, scope="work", work=first, purposes=["train-ai"])
    catalog = do_grant_issue(acting=OPERATOR, grantor=studio, scope="catalog", purposes=["search"])
    dispute = reviewed(Dispute.objects.get(), reviewer_actor)
    before = last_seq()

    dispute_decide(actor=reviewer_actor, dispute=dispute, outcome="rejected", reason="The rival holds the rights.")

    assert Work.objects.get(pk=first.pk).status == "withdrawn"
    assert Work.objects.get(pk=second.pk).status == "active"
    assert Grant.objects.get(pk=on_first.pk).revoked_at is not None
    assert Grant.objects.get(pk=catalog.pk).revoked_at is None  # it covers the rest of the catalog
    assert [a for a, _, _ in actions_after(before)] == ["grant.revoke", "work.withdraw", "dispute.decide"]
    assert Dispute.objects.get().remedy == ""


def test_a_transfer_moves_the_work_with_everything_under_it(studio, rival, make_work, reviewer_actor):
    ISBN = "isbn:978-4-04-102622-9"
    make_work(studio, identifiers=[ISBN])
    series = make_work(rival, kind="collection")
    episode = make_work(rival, parent=series, identifiers=[ISBN])
    cut = make_work(rival, parent=episode)
    dispute = reviewed(Dispute.objects.get(), reviewer_actor)

    dispute_decide(actor=reviewer_actor, dispute=dispute, outcome="upheld", reason="Theirs.", remedy="transfer")

    episode.refresh_from_db()
    cut.refresh_from_db()
    series.refresh_from_db()
    assert (episode.owner, episode.parent, episode.lineage) == (studio, None, "/")
    assert (cut.owner, cut.parent_id, cut.lineage) == (studio, episode.pk, f"/{episode.pk.hex}/")
    assert series.owner == rival


def test_a_transfer_that_would_clash_changes_nothing(studio, rival, reviewer_actor):
    ISBN = "isbn:978-4-04-102622-9"
    do_work_register(acting=OPERATOR, organization=studio, external_ref="CEL-1", title="Cel", identifiers=[ISBN])
    copy = do_work_register(acting=OPERATOR, organization=rival, external_ref="CEL-1", title="Cel", identifiers=[ISBN])
    grant = do_grant_issue(acting=OPERATOR, grantor=rival, scope="work", work=copy, purposes=["train-ai"])
    dispute = reviewed(Dispute.objects.get(), reviewer_actor)

    with pytest.raises(Conflict):
        dispute_decide(actor=reviewer_actor, dispute=dispute, outcome="upheld", reason="x", remedy="transfer")

    assert Dispute.objects.get().status == "under_review"
    assert Grant.objects.get(pk=grant.pk).revoked_at is None
    assert Work.objects.get(pk=copy.pk).owner == rival


@pytest.mark.parametrize("outcome,remedy", [("upheld", ""), ("upheld", "burn"), ("rejected", "withdraw")])
def test_an_ownership_remedy_is_required_exactly_when_upheld(conflict, reviewer_actor, outcome, remedy):
    dispute = reviewed(conflict["dispute"], reviewer_actor)
    with pytest.raises(ValidationFailed):
        dispute_decide(actor=reviewer_actor, dispute=dispute, outcome=outcome, reason="r", remedy=remedy)
    assert Dispute.objects.get().status == "under_review"


def test_a_decision_needs_a_reason(conflict, reviewer_actor):
    dispute = reviewed(conflict["dispute"], reviewer_actor)
    with pytest.raises(ValidationFailed) as raised:
        dispute_decide(actor=reviewer_actor, dispute=dispute, outcome="rejected", reason="  ")
    assert "reason" in raised.value.fields


def test_a_grant_validity_dispute_records_the_decision_only(studio, rival, make_work, reviewer_actor):
    work = make_work(rival)
    grant = do_grant_issue(acting=OPERATOR, grantor=rival, scope="work", work=work, purposes=["train-ai"])
    dispute = dispute_open(
        actor=owner_actor(studio), claimant=studio, kind="grant_validity", statement="Not theirs to grant.",
        works=[work],
    )
    dispute = reviewed(dispute, reviewer_actor)
    dispute_decide(actor=reviewer_actor, dispute=dispute, outcome="upheld", reason="Noted.")

    assert Work.objects.get(pk=work.pk).status == "active"
    assert Grant.objects.get(pk=grant.pk).revoked_at is None
    assert AuditEvent.objects.get(action="dispute.decide").data["to"] == "upheld"

