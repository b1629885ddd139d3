"""/api/v1/disputes: the parties and reviewers see a dispute; to anyone else it does not exist."""

from __future__ import annotations

import io

import pytest
from rest_framework.test import APIClient

from registry.models import AuditEvent, Dispute, EvidenceFile, Membership, Work
from tests.conftest import owner_of

pytestmark = pytest.mark.django_db

ALL_BUT_DISPUTES = ["checks", "works:read", "works:write", "grants:write", "uploads"]


@pytest.fixture
def dispute(studio, rival, register_image) -> Dispute:
    register_image(studio, seed=1)
    register_image(rival, seed=1)
    return Dispute.objects.get()


def session(user) -> APIClient:
    client = APIClient()
    client.force_login(user)
    return client


def url(dispute: Dispute, action: str = "") -> str:
    return f"/api/v1/disputes/{dispute.pk}" + (f"/{action}" if action else "")


def test_anonymous_callers_are_asked_to_authenticate(dispute):
    client = APIClient()
    for response in (
        client.get("/api/v1/disputes"),
        client.get(url(dispute)),
        client.post(url(dispute, "comments"), {"message": "hi"}, format="json"),
        client.post("/api/v1/disputes", {}, format="json"),
    ):
        assert response.status_code == 401
        assert response.json()["error"]["code"] == "not_authenticated"


def test_an_outsider_is_told_nothing_exists(dispute, make_org, client_for, member):
    outsider = make_org()
    for client in (client_for(outsider, ["disputes"]), session(member(outsider, "owner").user)):
        assert client.get(url(dispute)).status_code == 404
        assert client.post(url(dispute, "comments"), {"message": "hi"}, format="json").status_code == 404
        decide = {"outcome": "upheld", "reason": "x"}
        assert client.post(url(dispute, "decide"), decide, format="json").status_code == 404
        assert client.get("/api/v1/disputes").json()["results"] == []


def test_the_ai_developer_that_checks_the_work_sees_no_dispute(dispute, developer, client_for):
    assert client_for(developer, ["checks", "disputes"]).get(url(dispute)).status_code == 404


@pytest.mark.parametrize("side", ["claimant", "respondent"])
@pytest.mark.parametrize("role", ["viewer", "manager", "owner"])
def test_any_member_of_either_party_sees_the_dispute(dispute, member, side, role):
    user = member(getattr(dispute, side), role).user
    response = session(user).get(url(dispute))
    assert response.status_code == 200
    body = response.json()
    assert body["id"] == str(dispute.pk)
    assert (body["claimant"], body["respondent"], body["status"]) == (
        dispute.claimant.slug, dispute.respondent.slug, "open",
    )
    assert body["automatic"] is True
    assert {w["side"] for w in body["works"]} == {"claimant", "respondent"}
    assert body["events"][0]["by"] == "kyoka"
    listed = session(user).get("/api/v1/disputes").json()["results"]
    assert [d["id"] for d in listed] == [str(dispute.pk)]


@pytest.mark.parametrize("side", ["claimant", "respondent"])
def test_a_partys_key_with_the_disputes_scope_sees_and_answers(dispute, client_for, side):
    org = getattr(dispute, side)
    client = client_for(org, ["disputes"])
    assert client.get(url(dispute)).status_code == 200
    response = client.post(url(dispute, "comments"), {"message": "Our model sheets are attached."}, format="json")
    assert response.status_code == 201
    last = response.json()["events"][-1]
    assert (last["kind"], last["by"], last["message"]) == ("comment", org.slug, "Our model sheets are attached.")


@pytest.mark.parametrize("side", ["claimant", "respondent"])
def test_a_partys_key_without_the_disputes_scope_is_forbidden(dispute, client_for, side):
    client = client_for(getattr(dispute, side), ALL_BUT_DISPUTES)
    for response in (
        client.get("/api/v1/disputes"),
        client.get(url(dispute)),
        client.post(url(dispute, "comments"), {"message": "hi"}, format="json"),
    ):
        assert response.status_code == 403
        assert "disputes" in response.json()["error"]["message"]


def test_a_viewer_reads_but_does_not_comment(dispute, member):
    client = session(member(dispute.respondent, "viewer").user)
    response = client.post(url(dispute, "comments"), {"message": "hi"}, format="json")
    assert response.status_code == 403


def test_a_manager_comments_with_evidence(dispute, member):
    client = session(member(dispute.respondent, Membership.Role.MANAGER).user)
    evidence = io.BytesIO(b"%PDF-1.4 our contract")
    evidence.name = "contract.pdf"
    response = client.post(url(dispute, "comments"), {"message": "Licensed.", "evidence": [evidence]})
    assert response.status_code == 201, response.content
    assert [e["name"] for e in response.json()["evidence"]] == ["contract.pdf"]
    stored = EvidenceFile.objects.get()
    assert (stored.dispute, stored.organization) == (dispute, dispute.respondent)
    assert AuditEvent.objects.get(action="dispute.comment").data["evidence"] == ["contract.pdf"]


def test_a_reviewer_sees_every_dispute_and_runs_it(dispute, reviewer, rival):
    client = session(reviewer)
    assert [d["id"] for d in client.get("/api/v1/disputes").json()["results"]] == [str(dispute.pk)]
    assert client.post(url(dispute, "start-review")).status_code == 200
    response = client.post(url(dispute, "request-info"), {"message": "Proof?", "party": rival.slug}, format="json")
    assert response.status_code == 200
    assert response.json()["events"][-1]["by"] == "reviewer"
    response = client.post(
        url(dispute, "decide"), {"outcome": "upheld", "reason": "Registered first.", "remedy": "withdraw"},
        format="json",
    )
    assert response.status_code == 200, response.content
    assert (response.json()["status"], response.json()["remedy"]) == ("upheld", "withdraw")
    response = client.post(url(dispute, "decide"), {"outcome": "rejected", "reason": "again"}, format="json")
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "invalid_transition"


@pytest.mark.parametrize("side", ["claimant", "respondent"])
def test_parties_cannot_run_the_review(dispute, client_for, side):
    client = client_for(getattr(dispute, side), ["disputes"])
    assert client.post(url(dispute, "start-review")).status_code == 403
    decide = {"outcome": "upheld", "reason": "mine"}
    assert client.post(url(dispute, "decide"), decide, format="json").status_code == 403
    assert client.post(url(dispute, "assign"), {"assignee": None}, format="json").status_code == 403
    assert Dispute.objects.get().status == "open"


def test_only_the_claimant_withdraws(dispute, client_for):
    respondent = client_for(dispute.respondent, ["disputes"])
    assert respondent.post(url(dispute, "withdraw"), {}, format="json").status_code == 403
    claimant = client_for(dispute.claimant, ["disputes"])
    response = claimant.post(url(dispute, "withdraw"), {"reason": "We licensed it to them."}, format="json")
    assert response.status_code == 200
    assert response.json()["status"] == "withdrawn"


def test_a_studio_files_a_dispute_with_its_key(studio, rival, make_work, client_for):
    theirs = make_work(rival)
    ours = make_work(studio)
    response = client_for(studio, ["disputes"]).post(
        "/api/v1/disputes",
        {"kind": "ownership", "statement": "Our character.", "works": [str(theirs.pk), str(ours.pk)]},
        format="json",
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["claimant"], body["respondent"], body["automatic"]) == (studio.slug, rival.slug, False)
    assert {(w["work"], w["side"]) for w in body["works"]} == {
        (str(theirs.pk), "respondent"), (str(ours.pk), "claimant"),
    }


def test_a_dispute_filed_by_hand_with_evidence(studio, rival, make_work):
    theirs = make_work(rival)
    client = session(owner_of(studio))
    evidence = io.BytesIO(b"model sheet scan")
    evidence.name = "sheet.png"
    response = client.post(
        "/api/v1/disputes",
        {"kind": "other", "statement": "See the sheet.", "works": [str(theirs.pk)], "evidence": [evidence]},
    )
    assert response.status_code == 201, response.content
    assert [e["name"] for e in response.json()["evidence"]] == ["sheet.png"]


@pytest.mark.parametrize("payload,field", [
    ({"kind": "ownership", "statement": "x", "works": []}, "works"),
    ({"kind": "theft", "statement": "x", "works": ["00000000-0000-0000-0000-000000000000"]}, "kind"),
    ({"kind": "ownership", "statement": "x", "works": ["00000000-0000-0000-0000-000000000000"]}, "works"),
    ({"kind": "ownership", "statement": "", "works": ["00000000-0000-0000-0000-000000000000"]}, "statement"),
])
def test_a_bad_dispute_is_refused_by_field(studio, client_for, payload, field):
    response = client_for(studio, ["disputes"]).post("/api/v1/disputes", payload, format="json")
    assert response.status_code == 400
    assert field in response.json()["error"]["fields"]


def test_a_dispute_needs_another_organisations_work(studio, make_work, client_for):
    ours = make_work(studio)
    response = client_for(studio, ["disputes"]).post(
        "/api/v1/disputes", {"kind": "ownership", "statement": "x", "works": [str(ours.pk)]}, format="json"
    )
    assert response.status_code == 400
    assert "works" in response.json()["error"]["fields"]
    assert not Dispute.objects.filter(conflict_key__isnull=True).exists()
    assert Work.objects.filter(pk=ours.pk).exists()


def test_a_key_without_the_disputes_scope_cannot_file(studio, rival, make_work, client_for):
    theirs = make_work(rival)
    response = client_for(studio, ALL_BUT_DISPUTES).post(
        "/api/v1/disputes", {"kind": "ownership", "statement": "x", "works": [str(theirs.pk)]}, format="json"
    )
    assert response.status_code == 403


# --- what each side sees, and how much one may file ----------------------------------------

ISBN = "isbn:978-4-06-182623-6"


def test_a_party_reads_its_own_references_and_only_the_other_sides_titles(studio, rival, register_image, reviewer,
                                                                         client_for):
    own = register_image(studio, seed=1, identifiers=[ISBN])
    copy = register_image(rival, seed=2, identifiers=[ISBN], urls=["https://rival.example/cel.png"])
    dispute = Dispute.objects.get()
    works = {w["work"]: w for w in client_for(studio, ["disputes"]).get(url(dispute)).json()["works"]}
    assert works[str(own.pk)]["references"] == {
        "external_ref": own.external_ref, "sha256": [own.files.get().sha256], "urls": [],
        "identifiers": ["isbn:9784061826236"],
    }
    assert works[str(copy.pk)]["references"] is None
    assert works[str(copy.pk)]["title"] == copy.title
    body = client_for(studio, ["disputes"]).get(url(dispute)).content.decode()
    assert copy.files.get().sha256 not in body and "rival.example" not in body
    rival_view = {w["work"]: w for w in session(owner_of(rival)).get(url(dispute)).json()["works"]}
    assert rival_view[str(own.pk)]["references"] is None
    assert rival_view[str(copy.pk)]["references"]["urls"] == ["https://rival.example/cel.png"]
    both = {w["work"]: w for w in session(reviewer).get(url(dispute)).json()["works"]}
    assert both[str(own.pk)]["references"] is not None and both[str(copy.pk)]["references"] is not None


def test_staff_who_are_not_reviewers_see_no_dispute(dispute, make_user):
    staff = session(make_user(is_staff=True))
    assert staff.get(url(dispute)).status_code == 404
    assert staff.get("/api/v1/disputes").json()["results"] == []
    assert staff.post(url(dispute, "start-review"), format="json").status_code == 404


def test_the_dispute_says_whether_it_freezes(studio, make_org, make_work, client_for):
    newcomer = make_org(verified=False)
    theirs = make_work(studio)
    response = client_for(newcomer, ["disputes"]).post(
        "/api/v1/disputes", {"kind": "other", "statement": "Ours.", "works": [str(theirs.pk)]}, format="json"
    )
    assert response.status_code == 201
    assert response.json()["freezing"] is False
    assert [w["freezes"] for w in response.json()["works"]] == [False]


@pytest.mark.parametrize("language,message", [("en", "already has 10 open disputes"), ("ja", "すでに10件")])
def test_an_eleventh_open_dispute_is_429(studio, rival, make_work, client_for, language, message):
    from registry.services.disputes import do_dispute_open
    from tests.conftest import OPERATOR

    theirs = make_work(rival)
    for n in range(10):
        do_dispute_open(acting=OPERATOR, claimant=studio, kind="other", statement=f"Claim {n}", works=[theirs])
    response = client_for(studio, ["disputes"]).post(
        "/api/v1/disputes", {"kind": "other", "statement": "One more.", "works": [str(theirs.pk)]}, format="json",
        HTTP_ACCEPT_LANGUAGE=language,
    )
    assert response.status_code == 429
    assert response.json()["error"]["code"] == "limit_reached"
    assert message in response.json()["error"]["message"]
    assert Dispute.objects.count() == 10


def test_twenty_disputes_a_day_and_no_more(studio, rival, make_work, client_for):
    from registry.services.disputes import do_dispute_open, do_dispute_withdraw
    from tests.conftest import OPERATOR

    # Kyoka's own conflict dispute names the studio as claimant, but it is not the studio's doing.
    make_work(studio, identifiers=[ISBN])
    make_work(rival, identifiers=[ISBN])
    assert Dispute.objects.filter(claimant=studio, conflict_key__isnull=False).count() == 1
    theirs = make_work(rival)
    for n in range(19):
        filed = do_dispute_open(acting=OPERATOR, claimant=studio, kind="other", statement=f"Claim {n}",
                                works=[theirs])
        do_dispute_withdraw(acting=OPERATOR, dispute=filed)  # none left open: only the daily count binds
    client = client_for(studio, ["disputes"])
    payload = {"kind": "other", "statement": "The 20th.", "works": [str(theirs.pk)]}
    twentieth = client.post("/api/v1/disputes", payload, format="json")
    assert twentieth.status_code == 201
    client.post(f"/api/v1/disputes/{twentieth.json()['id']}/withdraw", {}, format="json")
    response = client.post("/api/v1/disputes", {**payload, "statement": "The 21st."}, format="json")
    assert response.status_code == 429 and "in the last 24 hours" in response.json()["error"]["message"]
    assert Dispute.objects.filter(claimant=studio, conflict_key__isnull=True).count() == 20
