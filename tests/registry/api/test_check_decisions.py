"""Every rule of DESIGN.md "The decision", each with a test that fails if the rule breaks."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from registry.access import Actor
from registry.models import Dispute, DisputeWork, Organization
from registry.services.disputes import dispute_decide, dispute_start_review
from registry.services.grants import do_grant_issue, do_grant_revoke
from registry.services.hosts import do_host_confirm
from registry.services.works import do_work_withdraw
from tests.conftest import OPERATOR

pytestmark = pytest.mark.django_db

ISBN = "isbn:978-4-04-102622-9"


def grant(studio, **kwargs):
    kwargs.setdefault("scope", "work" if "work" in kwargs else "catalog")
    kwargs.setdefault("purposes", ["train-genai"])
    return do_grant_issue(acting=OPERATOR, grantor=studio, **kwargs)


@pytest.fixture(autouse=True)
def proven_hosts(studio):
    """The studio has proven the hosts its URLs below live on (standing for URL references)."""
    for host in ("cdn.example", "shared.example", "aozora.example", "q.example"):
        do_host_confirm(acting=OPERATOR, organization=studio, host=host)


def one(check, item, **terms):
    _, body = check([item], **terms)
    return body["results"][0]


def test_nothing_found_is_unregistered_and_never_permitted(check):
    result = one(check, {"ref": "x", "sha256": "a" * 64})
    assert result == {"index": 0, "ref": "x", "checked": {"sha256": "a" * 64}, "decision": "unregistered",
                      "permitted": False, "reason": "no_match"}


@pytest.mark.parametrize("item", [
    {"sha256": "xyz"}, {"sha256": "A" * 63}, {"phash": "c3a1f0e07c3c1e0"}, {"phash": "zz" * 8},
    {"phash": "c3a1f0e07c3c1e0f", "max_distance": 13}, {"identifier": "isbn:978-4-04-102622-3"},
    {"identifier": "nonsense"}, {"url": "not a url"}, {"url": "ftp://x.example/"}, {}, "string",
    {"sha256": "a" * 64, "url": "https://x.example/"}, {"sha256": 5},
])
def test_a_malformed_item_is_invalid_and_the_rest_of_the_batch_is_answered(check, make_work, studio, developer, item):
    work = make_work(identifiers=[ISBN])
    grant(studio, work=work, licensee=developer)
    _, body = check([item, {"identifier": ISBN}])
    invalid, good = body["results"]
    assert invalid["decision"] == "invalid" and invalid["permitted"] is False and invalid["error"]
    assert good["decision"] == "permitted"
    assert body["summary"] == {"permitted": 1, "not_permitted": 0, "unregistered": 0, "disputed": 0, "invalid": 1}


@pytest.mark.parametrize("terms,field", [
    ({"purpose": "train-everything"}, "purpose"), ({"territory": "XX"}, "territory"),
    ({"territory": "USA"}, "territory"), ({"context": "military"}, "context"),
])
def test_unknown_purpose_territory_or_context_fails_the_whole_request(check, terms, field):
    _, body = check([{"sha256": "a" * 64}], expect=400, **terms)
    assert body["error"]["code"] == "invalid" and field in body["error"]["fields"]


def test_more_than_ten_thousand_items_is_413(check):
    _, body = check([{"sha256": "a" * 64}] * 10_001, expect=413)
    assert body["error"]["code"] == "too_many_items"


def test_ten_thousand_items_are_answered_in_order(check):
    items = [{"ref": str(i), "sha256": f"{i:064x}"} for i in range(10_000)]
    _, body = check(items)
    assert [r["ref"] for r in body["results"]] == [str(i) for i in range(10_000)]
    assert body["summary"]["unregistered"] == 10_000


def test_catalog_grant_covers_every_work_present_and_future(check, make_work, studio, developer):
    grant(studio, licensee=developer)
    later = make_work(identifiers=[ISBN])
    result = one(check, {"identifier": ISBN})
    assert result["decision"] == "permitted" and result["permitted"] is True
    assert result["matches"][0]["work"] == str(later.pk) and result["matches"][0]["owner"] == studio.slug


def test_grant_on_a_parent_covers_descendants_but_not_the_other_way(check, make_work, studio, developer):
    franchise = make_work(kind="collection")
    episode = make_work(parent=franchise, kind="video")
    cel = make_work(parent=episode, urls=["https://cdn.example/cel/1.png"])
    sibling = make_work(parent=franchise, urls=["https://cdn.example/other.png"])
    grant(studio, work=episode, licensee=developer)
    assert one(check, {"url": "https://CDN.example/cel/1.png"})["decision"] == "permitted"
    refused = one(check, {"url": "https://cdn.example/other.png"})
    assert (refused["decision"], refused["reason"]) == ("not_permitted", "no_grant")
    del cel, sibling


@pytest.mark.parametrize("granted,asked,permitted", [
    (["train-ai"], "train-genai", True), (["tdm"], "train-genai", True), (["all"], "search", True),
    (["train-genai"], "train-ai", False), (["search"], "train-ai", False), (["ai-use"], "tdm", False),
])
def test_purpose_tree(check, make_work, studio, developer, granted, asked, permitted):
    work = make_work(identifiers=[ISBN])
    grant(studio, work=work, licensee=developer, purposes=granted)
    result = one(check, {"identifier": ISBN}, purpose=asked)
    assert result["permitted"] is permitted
    if not permitted:
        assert result["reason"] == "purpose_not_granted"


def test_grant_to_another_developer_is_licensee_not_granted(check, make_work, make_org, studio):
    other_dev = make_org(Organization.Kind.AI_DEVELOPER)
    grant(studio, work=make_work(identifiers=[ISBN]), licensee=other_dev)
    assert one(check, {"identifier": ISBN})["reason"] == "licensee_not_granted"
    assert one(check, {"identifier": ISBN}, as_org=other_dev)["decision"] == "permitted"


def test_any_verified_developer_grant_needs_a_verified_requester(check, make_work, make_org, studio):
    grant(studio, work=make_work(identifiers=[ISBN]), licensee=None)
    verified = make_org(Organization.Kind.AI_DEVELOPER)
    unverified = make_org(Organization.Kind.AI_DEVELOPER, verified=False)
    assert one(check, {"identifier": ISBN}, as_org=verified)["decision"] == "permitted"
    assert one(check, {"identifier": ISBN}, as_org=unverified)["reason"] == "requester_unverified"


def test_named_licensee_must_still_be_verified(check, make_work, make_org, studio):
    unverified = make_org(Organization.Kind.AI_DEVELOPER, verified=False)
    grant(studio, work=make_work(identifiers=[ISBN]), licensee=unverified)
    assert one(check, {"identifier": ISBN}, as_org=unverified)["reason"] == "requester_unverified"


def test_revoked_grant_stops_permitting_new_checks_but_old_receipts_stand(check, make_work, studio, developer,
                                                                          client_for):
    g = grant(studio, work=make_work(identifiers=[ISBN]), licensee=developer)
    before, body_before = check([{"identifier": ISBN}])
    assert body_before["results"][0]["decision"] == "permitted"
    do_grant_revoke(acting=OPERATOR, grant=g, reason="ended")
    result = one(check, {"identifier": ISBN})
    assert (result["decision"], result["reason"]) == ("not_permitted", "grant_revoked")
    again = client_for(developer, ["checks"]).get(f"/api/v1/checks/{body_before['check_id']}")
    assert again.content == before.content and again["Receipt-Signature"] == before["Receipt-Signature"]


def test_expired_and_not_yet_valid_grants(check, make_work, studio, developer):
    now = timezone.now()
    grant(studio, work=make_work(identifiers=[ISBN]), licensee=developer,
          valid_from=now - timedelta(days=10), valid_until=now - timedelta(seconds=1))
    assert one(check, {"identifier": ISBN})["reason"] == "grant_expired"
    other = "isbn:978-0-306-40615-7"
    grant(studio, work=make_work(identifiers=[other]), licensee=developer, valid_from=now + timedelta(days=1))
    assert one(check, {"identifier": other})["reason"] == "grant_not_yet_valid"


def test_territory_limited_grant_needs_the_territory(check, make_work, studio, developer):
    grant(studio, work=make_work(identifiers=[ISBN]), licensee=developer, territories=["JP"])
    assert one(check, {"identifier": ISBN}, territory="JP")["decision"] == "permitted"
    assert one(check, {"identifier": ISBN}, territory="us")["reason"] == "territory_not_granted"
    assert one(check, {"identifier": ISBN})["reason"] == "territory_not_granted"


def test_worldwide_grant_permits_any_territory(check, make_work, studio, developer):
    grant(studio, work=make_work(identifiers=[ISBN]), licensee=developer)
    assert one(check, {"identifier": ISBN}, territory="BR")["decision"] == "permitted"


def test_context_limited_grant_and_commercial_default(check, make_work, studio, developer):
    grant(studio, work=make_work(identifiers=[ISBN]), licensee=developer, contexts=["research"])
    assert one(check, {"identifier": ISBN})["reason"] == "context_not_granted"
    assert one(check, {"identifier": ISBN}, context="commercial")["reason"] == "context_not_granted"
    assert one(check, {"identifier": ISBN}, context="research")["decision"] == "permitted"


def test_unverified_grantor_grants_count_for_nothing(check, make_work, make_org, developer):
    squatter = make_org(verified=False)
    grant(squatter, work=make_work(squatter, identifiers=[ISBN]), licensee=developer, purposes=["all"])
    result = one(check, {"identifier": ISBN})
    assert (result["decision"], result["reason"]) == ("not_permitted", "grantor_unverified")


def test_suspended_grantor_grants_count_for_nothing(check, make_work, studio, developer):
    grant(studio, work=make_work(identifiers=[ISBN]), licensee=developer)
    Organization.objects.filter(pk=studio.pk).update(suspended_at=timezone.now())
    assert one(check, {"identifier": ISBN})["reason"] == "grantor_unverified"


def test_withdrawn_work_is_not_permitted(check, make_work, studio, developer):
    work = make_work(identifiers=[ISBN])
    grant(studio, licensee=developer, purposes=["all"])
    do_work_withdraw(acting=OPERATOR, work=work)
    assert one(check, {"identifier": ISBN})["reason"] == "work_withdrawn"


def test_a_withdrawn_copy_does_not_block_the_active_owners_grant(check, make_work, make_org, studio, developer,
                                                                  reviewer):
    url = "https://shared.example/cel.png"
    make_work(urls=[url])
    grant(studio, licensee=developer, purposes=["all"])
    squatter = make_org()  # verified, but it has not proven shared.example: no standing for that URL
    make_work(squatter, urls=[url])
    # The later registration without standing neither freezes nor blocks the owner's.
    assert one(check, {"url": url})["decision"] == "permitted"
    dispute = Dispute.objects.get(respondent=squatter)
    judge = Actor.for_user(reviewer)
    dispute_start_review(actor=judge, dispute=dispute)
    dispute_decide(actor=judge, dispute=dispute, outcome="upheld", reason="Aozora's original", remedy="withdraw")
    result = one(check, {"url": url})
    assert result["decision"] == "permitted" and [m["owner"] for m in result["matches"]] == [studio.slug]


def test_registered_without_any_grant_is_no_grant(check, make_work):
    make_work(identifiers=[ISBN])
    result = one(check, {"identifier": ISBN})
    assert (result["decision"], result["permitted"], result["reason"]) == ("not_permitted", False, "no_grant")


def test_open_dispute_answers_disputed_until_decided(check, make_work, make_org, studio, developer):
    work = make_work(identifiers=[ISBN])
    grant(studio, work=work, licensee=developer)
    dispute = Dispute.objects.create(kind="ownership", claimant=make_org(), respondent=studio, statement="ours")
    DisputeWork.objects.create(dispute=dispute, work=work, side="respondent", freezes=True)  # verified claimant
    result = one(check, {"identifier": ISBN})
    assert (result["decision"], result["permitted"], result["reason"]) == ("disputed", False, "dispute_open")
    Dispute.objects.filter(pk=dispute.pk).update(status="under_review")
    assert one(check, {"identifier": ISBN})["decision"] == "disputed"
    Dispute.objects.filter(pk=dispute.pk).update(
        status="rejected", decided_at=timezone.now(), decision_reason="not theirs"
    )
    assert one(check, {"identifier": ISBN})["decision"] == "permitted"


def test_several_matched_works_must_all_permit(check, make_work, studio, developer):
    url = "https://shared.example/cel.png"
    first, second = make_work(urls=[url]), make_work(urls=[url])
    grant(studio, work=first, licensee=developer)
    result = one(check, {"url": url})
    assert result["decision"] == "not_permitted" and result["reason"] == "no_grant"
    assert {m["work"] for m in result["matches"]} == {str(first.pk), str(second.pk)}
    grant(studio, work=second, licensee=developer)
    assert one(check, {"url": url})["decision"] == "permitted"


def test_reason_comes_from_the_grant_that_came_closest(check, make_work, make_org, studio, developer):
    work = make_work(identifiers=[ISBN])
    other_dev = make_org(Organization.Kind.AI_DEVELOPER)
    # Fails purpose, territory and context:
    grant(studio, work=work, licensee=developer, purposes=["search"], territories=["FR"], contexts=["research"])
    # Fails only the licensee:
    grant(studio, work=work, licensee=other_dev)
    assert one(check, {"identifier": ISBN}, territory="JP")["reason"] == "licensee_not_granted"
    # Fails only the territory — passes more conditions in order than the licensee failure:
    grant(studio, work=work, licensee=developer, territories=["FR"])
    assert one(check, {"identifier": ISBN}, territory="JP")["reason"] == "territory_not_granted"


def test_permitted_answer_lists_the_covering_grants_and_conditions(check, make_work, studio, developer):
    g = grant(studio, work=make_work(identifiers=[ISBN]), licensee=developer, purposes=["train-ai"],
              attribution="© Aozora", licence_url="https://aozora.example/l")
    _, body = check([{"identifier": ISBN, "ref": "row-1"}])
    result = body["results"][0]
    assert result["grants"] == [str(g.pk)]
    assert body["grants"] == {str(g.pk): {
        "purposes": ["train-ai"], "territories": [], "contexts": [], "valid_until": None,
        "conditions": {"attribution": "© Aozora", "licence_url": "https://aozora.example/l"},
        "scope": "work", "grantor": studio.slug,
    }}
    assert result["matches"][0]["method"] == "identifier"


def test_url_patterns_and_identifier_forms_match(check, make_work, studio, developer):
    make_work(urls=["https://aozora.example/sora/*.png$"], identifiers=["isbn:4-04-102622-9"])
    grant(studio, licensee=developer)
    assert one(check, {"url": "https://aozora.example/sora/s1/e2/cel.png"})["decision"] == "permitted"
    assert one(check, {"url": "https://aozora.example/sora/cel.png?x=1"})["decision"] == "unregistered"
    assert one(check, {"identifier": "ISBN:9784041026229"})["decision"] == "permitted"


def test_a_fixed_number_of_queries_whatever_the_batch_size(check, make_work, studio, developer):
    for i in range(5):
        make_work(urls=[f"https://q.example/{i}"])
    make_work(identifiers=[ISBN])
    grant(studio, licensee=developer)

    def count(n):
        items = [{"url": f"https://q.example/{i % 5}"} for i in range(n)]
        items += [{"sha256": f"{i:064x}"} for i in range(n)]
        items += [{"phash": f"{i * 7919:016x}", "max_distance": 4} for i in range(n)]
        items += [{"identifier": ISBN} for _ in range(n)]
        with CaptureQueriesContext(connection) as queries:
            check(items)
        return len(queries)

    # The client's key is created, and the near-match index loaded, on first use: not counted.
    check([{"sha256": "0" * 64}, {"phash": "0" * 16}])
    small, large = count(2), count(500)
    assert small == large, (small, large)
    assert large <= 14
