"""Which disputes freeze their works (answer `disputed`), as DESIGN.md "Disputes" says.

A dispute freezes when its claimant has standing, when Kyoka opened it between two registrations
that both have standing, or once a reviewer starts its review. A later registration without
standing never freezes an earlier one that has it. Anything else waits in triage.
"""

from __future__ import annotations

import pytest
from django.utils import timezone

from registry.access import Actor
from registry.models import Dispute, DisputeWork, Organization, VerifiedHost
from registry.selectors.standing import org_has_standing, url_has_standing, urls_with_standing
from registry.services.disputes import dispute_open, dispute_start_review
from registry.services.grants import do_grant_issue
from registry.services.verification import organization_suspend
from registry.services.works import do_work_register
from tests.conftest import OPERATOR, owner_of

pytestmark = pytest.mark.django_db

ISBN = "isbn:978-4-04-102622-9"
URL = "https://cdn.aozora.example/cel/0042.png"


def granted_work(org: Organization, ref: str = "CEL-42", **refs):
    work = do_work_register(acting=OPERATOR, organization=org, external_ref=ref, title=f"Cel {ref}", **refs)
    do_grant_issue(acting=OPERATOR, grantor=org, scope="work", work=work, licensee=None, purposes=["all"])
    return work


def freezing(dispute: Dispute) -> dict:
    return {link.work_id: link.freezes for link in DisputeWork.objects.filter(dispute=dispute)}


def decision(check, item: dict) -> str:
    return check([item])[1]["results"][0]["decision"]


def prove_host(org: Organization, host: str) -> None:
    VerifiedHost.objects.create(organization=org, host=host, method=VerifiedHost.Method.REVIEWER,
                                covers_subdomains=True, verified_at=timezone.now())


def test_an_unverified_claimants_dispute_freezes_nothing_until_a_reviewer_starts_its_review(
    studio, make_org, check, reviewer
):
    work = granted_work(studio, identifiers=[ISBN])
    newcomer = make_org(verified=False, name="Fresh Sign-up")
    dispute = dispute_open(actor=Actor.for_user(owner_of(newcomer)), claimant=newcomer, kind="ownership",
                           statement="That cel is ours.", works=[work])
    assert freezing(dispute) == {work.pk: False}
    assert decision(check, {"identifier": ISBN}) == "permitted"

    dispute_start_review(actor=Actor.for_user(reviewer), dispute=dispute)
    assert freezing(dispute) == {work.pk: True}
    assert decision(check, {"identifier": ISBN}) == "disputed"


def test_a_verified_claimants_dispute_freezes_its_works_at_once(studio, rival, check):
    work = granted_work(studio, identifiers=[ISBN])
    dispute = dispute_open(actor=Actor.for_user(owner_of(rival)), claimant=rival, kind="ownership",
                           statement="That cel is ours.", works=[work])
    assert freezing(dispute) == {work.pk: True}
    assert decision(check, {"identifier": ISBN}) == "disputed"


def test_a_suspended_claimant_has_no_standing_and_freezes_nothing(studio, rival, reviewer, check):
    work = granted_work(studio, identifiers=[ISBN])
    claimant = Actor.for_user(owner_of(rival))
    organization_suspend(actor=Actor.for_user(reviewer), organization=rival, reason="Fraud.")
    rival.refresh_from_db()
    assert not org_has_standing(rival)
    # Suspended members only read: filing is refused outright, so nothing can freeze.
    with pytest.raises(Exception, match="suspended"):
        dispute_open(actor=claimant, claimant=rival, kind="ownership", statement="Ours.", works=[work])
    assert decision(check, {"identifier": ISBN}) == "permitted"


def test_an_automatic_conflict_between_two_registrations_with_standing_freezes_both(studio, rival, check):
    original = granted_work(studio, identifiers=[ISBN])
    copy = do_work_register(acting=OPERATOR, organization=rival, external_ref="R-1", title="Copy", identifiers=[ISBN])
    dispute = Dispute.objects.get()
    assert freezing(dispute) == {original.pk: True, copy.pk: True}
    assert decision(check, {"identifier": ISBN}) == "disputed"


def test_a_later_registration_without_standing_freezes_itself_never_the_earlier_one(studio, make_org, check):
    original = granted_work(studio, identifiers=[ISBN])
    squatter = make_org(verified=False, name="Squatter KK")
    copy = do_work_register(acting=OPERATOR, organization=squatter, external_ref="S-1", title="Mine",
                            identifiers=[ISBN])
    dispute = Dispute.objects.get()
    assert (dispute.claimant, dispute.respondent) == (studio, squatter)
    assert freezing(dispute) == {original.pk: False, copy.pk: True}
    assert decision(check, {"identifier": ISBN}) == "permitted"


def test_an_earlier_registration_without_standing_cannot_freeze_a_later_one_with_it(studio, make_org, check):
    squatter = make_org(verified=False, name="Early Squatter")
    early = do_work_register(acting=OPERATOR, organization=squatter, external_ref="S-1", title="Mine",
                             identifiers=[ISBN])
    rightful = granted_work(studio, identifiers=[ISBN])
    dispute = Dispute.objects.get()
    assert (dispute.claimant, dispute.respondent) == (squatter, studio)
    assert freezing(dispute) == {early.pk: True, rightful.pk: False}
    assert decision(check, {"identifier": ISBN}) == "permitted"


def test_neither_with_standing_waits_in_triage(make_org):
    first, second = make_org(verified=False), make_org(verified=False)
    do_work_register(acting=OPERATOR, organization=first, external_ref="A", title="A", identifiers=[ISBN])
    do_work_register(acting=OPERATOR, organization=second, external_ref="B", title="B", identifiers=[ISBN])
    assert set(freezing(Dispute.objects.get()).values()) == {False}


def test_a_url_on_a_host_its_owner_has_not_proven_has_no_standing_in_a_conflict(studio, rival, check):
    prove_host(studio, "aozora.example")
    original = granted_work(studio, urls=[URL])
    copy = do_work_register(acting=OPERATOR, organization=rival, external_ref="R-1", title="Copy", urls=[URL])
    # The rival is verified, but has no proof of the studio's host: only its own registration freezes.
    assert freezing(Dispute.objects.get()) == {original.pk: False, copy.pk: True}
    assert decision(check, {"url": URL}) == "permitted"


def test_a_url_conflict_between_two_proven_hosts_freezes_both(studio, rival):
    prove_host(studio, "aozora.example")
    prove_host(rival, "cdn.aozora.example")
    original = granted_work(studio, urls=[URL])
    copy = do_work_register(acting=OPERATOR, organization=rival, external_ref="R-1", title="Copy", urls=[URL])
    assert freezing(Dispute.objects.get()) == {original.pk: True, copy.pk: True}


def test_standing_of_urls_is_set_based_and_follows_the_proofs(studio, rival, make_org):
    unverified = make_org(verified=False)
    prove_host(studio, "aozora.example")
    prove_host(unverified, "aozora.example")
    VerifiedHost.objects.create(organization=rival, host="rival.example")  # claimed, never proven
    asked = {(studio.pk, "cdn.aozora.example"), (studio.pk, "aozora.example"), (studio.pk, "other.example"),
             (rival.pk, "rival.example"), (unverified.pk, "aozora.example")}
    assert urls_with_standing(asked) == {(studio.pk, "cdn.aozora.example"), (studio.pk, "aozora.example")}
    assert url_has_standing(studio.pk, "aozora.example") and not url_has_standing(rival.pk, "rival.example")
