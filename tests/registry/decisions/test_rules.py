"""The decision's rules on hand-built facts: no database, every rule of DESIGN.md "The decision"."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from registry.decisions.load import Facts, SimilarWork, WorkFacts
from registry.decisions.parse import CheckRequest, Item
from registry.decisions.rules import decide_items
from registry.decisions.vocabulary import Decision, Method, Reason
from registry.models import Grant, Organization, VerifiedHost

NOW = datetime(2026, 12, 1, 12, tzinfo=UTC)
STUDIO = Organization(pk=1, slug="aozora", kind=Organization.Kind.RIGHTSHOLDER, verified_at=NOW - timedelta(days=9))
SQUATTER = Organization(pk=2, slug="squatter", kind=Organization.Kind.RIGHTSHOLDER)
DEVELOPER = Organization(pk=3, slug="acme", kind=Organization.Kind.AI_DEVELOPER, verified_at=NOW - timedelta(days=9))
REQUEST = CheckRequest(requester=DEVELOPER, purpose="train-genai", territory=None, context="commercial", at=NOW)
URL = "https://cdn.aozora.example/cel/1.png"


def work(owner: Organization = STUDIO, *, title: str = "Cel 1", frozen: bool = False, active: bool = True) -> WorkFacts:
    return WorkFacts(id=uuid.uuid4(), title=title, owner_id=owner.pk, owner_slug=owner.slug,
                     owner_verified=owner.is_verified, active=active, frozen=frozen, ancestor_ids=())


def open_grant(grantor: Organization = STUDIO, **terms) -> Grant:
    terms.setdefault("purposes", ["train-ai"])
    return Grant(id=uuid.uuid4(), grantor=grantor, scope="catalog", licensee=None, valid_from=NOW - timedelta(days=1),
                 created_at=NOW - timedelta(days=1), **terms)


def proof(host: str, *, subdomains: bool) -> VerifiedHost:
    return VerifiedHost(organization_id=STUDIO.pk, host=host, covers_subdomains=subdomains, verified_at=NOW)


def url_item() -> Item:
    return Item(index=0, url=URL, url_host="cdn.aozora.example")


def answer(item: Item, *, exact=None, patterns=None, similar=None, works=(), hosts=None, grants=None):
    facts = Facts(exact=[exact or {}], patterns=[patterns or set()], similar=[similar or {}],
                  works={w.id: w for w in works}, proven_hosts=hosts or {}, grants=grants or {},
                  similar_works={w.id: SimilarWork(w.id, w.title, w.owner_slug) for w in works})
    return decide_items(REQUEST, [item], facts)[0]


def test_nothing_matched_is_unregistered():
    result = answer(Item(index=0, sha256="a" * 64))
    assert (result.decision, result.reason, result.permitted) == (Decision.UNREGISTERED, Reason.NO_MATCH, False)


def test_a_similar_work_never_permits_even_with_a_covering_grant():
    cel = work()
    result = answer(Item(index=0, phash=0x0F0F), similar={cel.id: 8}, works=[cel], grants={cel.id: [open_grant()]})
    assert (result.decision, result.reason) == (Decision.NOT_PERMITTED, Reason.SIMILAR_ONLY)
    assert [(s.work.id, s.distance) for s in result.similar] == [(cel.id, 8)]
    assert result.grants == []


def test_an_exact_match_with_standing_and_a_covering_grant_permits_and_lists_similars_beside_it():
    cel, lookalike = work(), work(title="Look-alike")
    result = answer(Item(index=0, sha256="b" * 64, phash=1), exact={cel.id: {Method.SHA256}},
                    similar={lookalike.id: 3}, works=[cel, lookalike], grants={cel.id: [open_grant()]})
    assert result.decision == Decision.PERMITTED
    assert [m.work.id for m in result.matches] == [cel.id]
    assert [s.work.id for s in result.similar] == [lookalike.id]


def test_an_unverified_owners_registration_is_registered_but_never_permits():
    squatted = work(SQUATTER)
    result = answer(Item(index=0, sha256="c" * 64), exact={squatted.id: {Method.SHA256}}, works=[squatted],
                    grants={squatted.id: [open_grant(SQUATTER)]})
    assert (result.decision, result.reason) == (Decision.NOT_PERMITTED, Reason.GRANTOR_UNVERIFIED)


def test_an_exact_url_on_an_unproven_host_is_host_unverified():
    cel = work()
    result = answer(url_item(), exact={cel.id: {Method.URL}}, works=[cel], grants={cel.id: [open_grant()]})
    assert (result.decision, result.reason) == (Decision.NOT_PERMITTED, Reason.HOST_UNVERIFIED)


def test_a_dns_proof_covers_subdomains_and_a_file_proof_only_its_host():
    cel = work()
    terms = {"exact": {cel.id: {Method.URL}}, "works": [cel], "grants": {cel.id: [open_grant()]}}
    by_dns = {STUDIO.pk: (proof("aozora.example", subdomains=True),)}
    by_file_on_parent = {STUDIO.pk: (proof("aozora.example", subdomains=False),)}
    by_file_on_host = {STUDIO.pk: (proof("cdn.aozora.example", subdomains=False),)}
    assert answer(url_item(), hosts=by_dns, **terms).decision == Decision.PERMITTED
    assert answer(url_item(), hosts=by_file_on_parent, **terms).reason == Reason.HOST_UNVERIFIED
    assert answer(url_item(), hosts=by_file_on_host, **terms).decision == Decision.PERMITTED


def test_a_pattern_without_standing_neither_matches_nor_blocks():
    squatters_pattern = work(STUDIO, title="Pattern over someone else's host")
    result = answer(url_item(), patterns={squatters_pattern.id}, works=[squatters_pattern],
                    grants={squatters_pattern.id: [open_grant()]})
    assert (result.decision, result.reason) == (Decision.UNREGISTERED, Reason.NO_MATCH)

    owners = work(title="Owner's cel")
    proven = {STUDIO.pk: (proof("cdn.aozora.example", subdomains=False),)}
    other_pattern = work(SQUATTER, title="Squatter's pattern")
    result = answer(url_item(), exact={owners.id: {Method.URL}}, patterns={other_pattern.id},
                    works=[owners, other_pattern], hosts=proven, grants={owners.id: [open_grant()]})
    assert result.decision == Decision.PERMITTED
    assert [m.work.id for m in result.matches] == [owners.id]


def test_a_proven_pattern_permits():
    pattern = work()
    proven = {STUDIO.pk: (proof("aozora.example", subdomains=True),)}
    result = answer(url_item(), patterns={pattern.id}, works=[pattern], hosts=proven,
                    grants={pattern.id: [open_grant()]})
    assert result.decision == Decision.PERMITTED


def test_a_registration_without_standing_never_blocks_an_exact_match_with_standing():
    owners, squatters = work(title="A"), work(SQUATTER, title="B")
    result = answer(Item(index=0, sha256="d" * 64), exact={owners.id: {Method.SHA256}, squatters.id: {Method.SHA256}},
                    works=[owners, squatters], grants={owners.id: [open_grant()]})
    assert result.decision == Decision.PERMITTED
    assert {m.work.id: m.standing for m in result.matches} == {owners.id: True, squatters.id: False}
    assert [m.reason for m in result.matches if m.work.id == squatters.id] == [Reason.GRANTOR_UNVERIFIED]


def test_a_frozen_work_without_standing_does_not_freeze_one_with_standing():
    owners, squatters = work(title="A"), work(SQUATTER, title="B", frozen=True)
    result = answer(Item(index=0, sha256="e" * 64), exact={owners.id: {Method.SHA256}, squatters.id: {Method.SHA256}},
                    works=[owners, squatters], grants={owners.id: [open_grant()]})
    assert result.decision == Decision.PERMITTED


def test_a_frozen_deciding_work_is_disputed():
    cel = work(frozen=True)
    result = answer(Item(index=0, sha256="f" * 64), exact={cel.id: {Method.SHA256}}, works=[cel],
                    grants={cel.id: [open_grant()]})
    assert (result.decision, result.reason) == (Decision.DISPUTED, Reason.DISPUTE_OPEN)


def test_several_deciding_works_must_all_permit():
    first, second = work(title="A"), work(title="B")
    result = answer(Item(index=0, sha256="1" * 64), exact={first.id: {Method.SHA256}, second.id: {Method.SHA256}},
                    works=[first, second], grants={first.id: [open_grant()]})
    assert (result.decision, result.reason) == (Decision.NOT_PERMITTED, Reason.NO_GRANT)


def test_a_suspended_grantors_grant_counts_for_nothing():
    suspended = Organization(pk=1, slug="aozora", kind=Organization.Kind.RIGHTSHOLDER,
                             verified_at=NOW - timedelta(days=9), suspended_at=NOW - timedelta(hours=1))
    cel = work()  # registered while the studio had standing; its grants are read as they are now
    result = answer(Item(index=0, sha256="2" * 64), exact={cel.id: {Method.SHA256}}, works=[cel],
                    grants={cel.id: [open_grant(suspended)]})
    assert (result.decision, result.reason) == (Decision.NOT_PERMITTED, Reason.GRANTOR_UNVERIFIED)


def test_every_reason_is_in_the_vocabulary_with_a_label():
    assert {r.value for r in Reason} >= {
        "no_match", "similar_only", "dispute_open", "work_withdrawn", "no_grant", "licensee_not_granted",
        "requester_unverified", "purpose_not_granted", "grant_revoked", "grant_expired", "grant_not_yet_valid",
        "territory_not_granted", "context_not_granted", "grantor_unverified", "host_unverified",
    }
    assert all(str(r.label) for r in Reason)
