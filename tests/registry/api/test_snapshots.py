"""GET /api/v1/licences/snapshot: every exact key permitted to the caller, signed, short-lived, incremental."""

from __future__ import annotations

import hashlib
import io
import json
from datetime import timedelta

import pytest
from django.utils import timezone

from registry.models import AuditEvent, LicenceSnapshot, Organization, VerifiedHost
from registry.services.grants import do_grant_issue, do_grant_revoke
from registry.services.works import do_content_file_add, do_work_withdraw
from tests.conftest import OPERATOR
from tests.factories import make_image_bytes
from tests.registry.api.conftest import assert_error
from tests.registry.api.test_check_api import verify_independently

pytestmark = pytest.mark.django_db

HOST = "cdn.aozora.example"


@pytest.fixture
def proven_host(studio):
    # Standing for URLs: the studio has proven it controls its CDN host.
    return VerifiedHost.objects.create(organization=studio, host=HOST, method="reviewer", verified_at=timezone.now())


@pytest.fixture
def snapshot(client_for, developer):
    clients: dict[int, object] = {}

    def fetch(*, as_org=None, expect=200, **params):
        org = as_org or developer
        if org.pk not in clients:
            clients[org.pk] = client_for(org, ["checks"])
        params.setdefault("purpose", "train-genai")
        response = clients[org.pk].get("/api/v1/licences/snapshot", params)
        assert response.status_code == expect, response.content[:1000]
        return response, json.loads(response.content)

    return fetch


def add_image(work, seed: int) -> str:
    data = make_image_bytes(seed)
    do_content_file_add(acting=OPERATOR, work=work, fileobj=io.BytesIO(data), filename=f"{seed}.png")
    return hashlib.sha256(data).hexdigest()


def issue(studio, **terms):
    terms.setdefault("purposes", ["train-ai"])
    terms.setdefault("scope", "work" if "work" in terms else "catalog")
    return do_grant_issue(acting=OPERATOR, grantor=studio, **terms)


def test_snapshot_lists_exactly_the_granted_keys_with_the_grants_they_rest_on(
    snapshot, make_work, studio, developer, make_org, proven_host
):
    granted = make_work(urls=[f"https://{HOST}/cel/1.png"], identifiers=["isbn:978-4-04-102622-9"])
    digest = add_image(granted, 1)
    ungranted = make_work(urls=[f"https://{HOST}/cel/2.png"])
    add_image(ungranted, 2)
    grant = issue(studio, work=granted, licensee=developer)
    issue(studio, work=ungranted, licensee=make_org(Organization.Kind.AI_DEVELOPER))  # someone else's licence

    _, body = snapshot()

    assert body["requester"] == developer.slug and body["purpose"] == "train-genai"
    assert body["base"] is None
    assert body["keys"] == {
        "sha256": {digest: [str(grant.pk)]},
        "url": {f"https://{HOST}/cel/1.png": [str(grant.pk)]},
        "url_pattern": {},
        "identifier": {"isbn:9784041026229": [str(grant.pk)]},
        "url_pattern_except": {},
    }
    assert body["key_count"] == 3
    assert set(body["grants"]) == {str(grant.pk)}
    assert body["grants"][str(grant.pk)]["purposes"] == ["train-ai"]


def test_every_key_in_the_snapshot_answers_permitted_online_and_no_refused_key_is_in_it(
    snapshot, check, make_work, studio, developer, proven_host
):
    works = [make_work(urls=[f"https://{HOST}/w/{n}"]) for n in range(6)]
    digests = [add_image(work, 10 + n) for n, work in enumerate(works)]
    issue(studio, work=works[0], licensee=developer)
    issue(studio, work=works[1], licensee=None)  # any verified AI developer
    issue(studio, work=works[2], licensee=developer, territories=["JP"])  # needs the territory
    issue(studio, work=works[3], licensee=developer, contexts=["research"])  # not commercial
    issue(studio, work=works[4], licensee=developer, purposes=["search"])  # another purpose
    revoked = issue(studio, work=works[5], licensee=developer)
    do_grant_revoke(acting=OPERATOR, grant=revoked)

    _, body = snapshot()
    items = [{"sha256": d} for d in digests] + [{"url": f"https://{HOST}/w/{n}"} for n in range(6)]
    _, online = check(items)
    permitted_online = {
        next(iter(item.values())) for item, result in zip(items, online["results"], strict=True) if result["permitted"]
    }
    in_snapshot = set(body["keys"]["sha256"]) | set(body["keys"]["url"])
    assert in_snapshot == permitted_online
    assert in_snapshot == {digests[0], digests[1], f"https://{HOST}/w/0", f"https://{HOST}/w/1"}

    _, in_japan = snapshot(territory="JP")
    assert digests[2] in in_japan["keys"]["sha256"]


def test_a_key_shared_with_an_ungranted_work_is_left_out(snapshot, make_work, studio, developer, make_org):
    other_studio = make_org(Organization.Kind.RIGHTSHOLDER)
    granted = make_work()
    digest = add_image(granted, 30)
    squatter = make_work(other_studio)
    do_content_file_add(acting=OPERATOR, work=squatter, fileobj=io.BytesIO(make_image_bytes(30)),
                     filename="same.png")
    issue(studio, work=granted, licensee=developer)

    _, body = snapshot()

    assert digest not in body["keys"]["sha256"]


def test_grants_on_a_parent_and_on_the_catalog_cover_what_is_below(snapshot, make_work, studio, developer):
    series = make_work(kind="collection")
    episode = make_work(parent=series)
    digest = add_image(episode, 40)
    grant = issue(studio, work=series, licensee=developer)
    _, body = snapshot()
    assert body["keys"]["sha256"] == {digest: [str(grant.pk)]}

    do_grant_revoke(acting=OPERATOR, grant=grant)
    catalog = issue(studio, licensee=developer)
    _, body = snapshot()
    assert body["keys"]["sha256"] == {digest: [str(catalog.pk)]}


def test_validity_is_at_most_a_day_and_never_past_the_earliest_grant_it_rests_on(
    snapshot, make_work, studio, developer
):
    lasting, ending = make_work(), make_work()
    add_image(lasting, 50)
    add_image(ending, 51)
    issue(studio, work=lasting, licensee=developer)
    _, body = snapshot()
    issued = timezone.datetime.fromisoformat(body["issued_at"])
    assert timezone.datetime.fromisoformat(body["valid_until"]) == issued + timedelta(hours=24)

    ends = timezone.now() + timedelta(hours=3)
    issue(studio, work=ending, licensee=developer, valid_until=ends)
    _, body = snapshot()
    assert timezone.datetime.fromisoformat(body["valid_until"]) == ends


def test_the_body_is_signed_like_a_receipt_and_recorded(snapshot, api_client, make_work, studio, developer):
    add_image(work := make_work(), 60)
    grant = issue(studio, work=work, licensee=developer)
    response, body = snapshot()

    jwks = api_client.get("/.well-known/jwks.json").json()
    verify_independently(response.content, response["Receipt-Signature"], jwks)
    stored = LicenceSnapshot.objects.get(pk=body["snapshot_id"])
    assert stored.organization == developer and stored.key_count == 1
    assert list(stored.grants.all()) == [grant]
    event = AuditEvent.objects.filter(action="snapshot.issue").get()
    assert event.object_id == body["snapshot_id"]


def test_since_gives_what_was_added_and_removed_with_why(snapshot, make_work, studio, developer):
    kept, revoked_work, withdrawn, new = make_work(), make_work(), make_work(), make_work()
    digests = {name: add_image(work, n) for n, (name, work) in enumerate(
        {"kept": kept, "revoked": revoked_work, "withdrawn": withdrawn, "new": new}.items(), start=70)}
    issue(studio, work=kept, licensee=developer)
    to_revoke = issue(studio, work=revoked_work, licensee=developer)
    issue(studio, work=withdrawn, licensee=developer)
    _, base = snapshot()

    do_grant_revoke(acting=OPERATOR, grant=to_revoke)
    do_work_withdraw(acting=OPERATOR, work=withdrawn)
    added_grant = issue(studio, work=new, licensee=developer)
    _, delta = snapshot(since=base["issued_at"])

    assert delta["base"] == {"snapshot_id": base["snapshot_id"], "issued_at": base["issued_at"]}
    assert "keys" not in delta
    assert delta["added"]["sha256"] == {digests["new"]: [str(added_grant.pk)]}
    assert delta["removed"]["sha256"] == {digests["revoked"]: "grant_revoked", digests["withdrawn"]: "work_withdrawn"}
    assert delta["key_count"] == 2

    # Applying the delta to the base gives exactly the full snapshot of now.
    state = {kind: dict(keys) for kind, keys in base["keys"].items()}
    for kind in state:
        for key in delta["removed"][kind]:
            state[kind].pop(key)
        state[kind].update(delta["added"][kind])
    _, full = snapshot()
    assert state == full["keys"]
    # A delta of a delta replays the chain.
    _, again = snapshot(since=delta["issued_at"])
    assert again["added"]["sha256"] == {} and again["removed"]["sha256"] == {}


def test_since_naming_no_snapshot_of_yours_gives_a_full_one(snapshot, make_work, studio, developer):
    add_image(work := make_work(), 80)
    issue(studio, work=work, licensee=developer)
    _, body = snapshot(since="2026-01-01T00:00:00Z")
    assert body["base"] is None and len(body["keys"]["sha256"]) == 1


def test_a_pattern_lists_the_refused_urls_under_it_as_exceptions(
    snapshot, check, make_work, studio, developer, proven_host
):
    pattern_work = make_work(urls=[f"https://{HOST}/art/*.png"])
    grant = issue(studio, work=pattern_work, licensee=developer)
    _, body = snapshot()
    assert body["keys"]["url_pattern"] == {f"https://{HOST}/art/*.png": [str(grant.pk)]}
    assert body["keys"]["url_pattern_except"] == {}

    # Another of the studio's works, not granted, registers one URL under that pattern: online,
    # that URL is refused while the pattern's other URLs stay permitted.
    make_work(urls=[f"https://{HOST}/art/secret.png"])
    _, online = check([{"url": f"https://{HOST}/art/secret.png"}, {"url": f"https://{HOST}/art/open.png"}])
    assert [r["permitted"] for r in online["results"]] == [False, True]
    _, body = snapshot()
    assert body["keys"]["url_pattern"] == {f"https://{HOST}/art/*.png": [str(grant.pk)]}
    assert body["keys"]["url_pattern_except"] == {f"https://{HOST}/art/*.png": [f"https://{HOST}/art/secret.png"]}
    assert body["key_count"] == 1


def test_a_pattern_is_left_out_when_another_pattern_on_its_host_refuses(
    snapshot, make_work, studio, developer, proven_host
):
    issue(studio, work=make_work(urls=[f"https://{HOST}/art/*.png"]), licensee=developer)
    make_work(urls=[f"https://{HOST}/art/private/*"])  # not granted: some URLs match both

    _, body = snapshot()

    assert body["keys"]["url_pattern"] == {}


def test_revoking_tells_until_when_earlier_snapshots_run(snapshot, client_for, make_work, studio, developer):
    add_image(work := make_work(), 90)
    grant = issue(studio, work=work, licensee=developer)
    _, body = snapshot()
    studio_client = client_for(studio, ["grants:write"])

    response = studio_client.post(f"/api/v1/grants/{grant.pk}/revoke", {"reason": "ended"}, format="json")

    assert response.status_code == 200
    assert response.json()["snapshots_valid_until"] == body["valid_until"]
    other = issue(studio, work=work, licensee=developer)
    response = studio_client.post(f"/api/v1/grants/{other.pk}/revoke", {}, format="json")
    assert response.json()["snapshots_valid_until"] is None


def test_studios_see_which_licensee_downloaded_which_grants_and_when(
    snapshot, client_for, make_work, studio, developer
):
    add_image(work := make_work(), 95)
    grant = issue(studio, work=work, licensee=developer)
    _, body = snapshot()

    activity = client_for(studio, ["works:read"]).get("/api/v1/activity").json()

    assert activity["snapshots"] == [{
        "snapshot": body["snapshot_id"], "licensee": developer.slug, "licensee_name": developer.name,
        "purpose": "train-genai", "territory": None, "context": "commercial",
        "issued_at": body["issued_at"], "valid_until": body["valid_until"], "grants": [str(grant.pk)],
    }]


def test_bad_terms_are_400_with_the_error_shape(snapshot, client_for, developer):
    client = client_for(developer, ["checks"])
    assert_error(client.get("/api/v1/licences/snapshot", {"purpose": "nope"}), 400)
    assert_error(client.get("/api/v1/licences/snapshot", {"purpose": "tdm", "since": "yesterday"}), 400)
    assert_error(client.get("/api/v1/licences/snapshot", {"purpose": "tdm", "territory": "X" * 100}), 400)


def test_a_key_without_the_checks_scope_is_refused(client_for, api_client, developer):
    assert_error(client_for(developer, ["works:read"]).get("/api/v1/licences/snapshot", {"purpose": "tdm"}), 403)
    assert api_client.get("/api/v1/licences/snapshot", {"purpose": "tdm"}).status_code == 401


def test_the_studios_pages_show_downloads_and_until_when_snapshots_run(snapshot, make_work, studio, developer):
    from django.test import Client as BrowserlessClient
    from django.urls import reverse

    from tests.conftest import owner_of

    add_image(work := make_work(), 97)
    grant = issue(studio, work=work, licensee=developer)
    snapshot()
    page = BrowserlessClient()
    page.force_login(owner_of(studio))

    activity = page.get(reverse("web:activity"), HTTP_ACCEPT_LANGUAGE="en").content.decode()
    confirm = page.get(reverse("web:grant_revoke", args=[grant.pk]), HTTP_ACCEPT_LANGUAGE="ja").content.decode()

    assert "Licence snapshots downloaded" in activity and developer.name in activity
    assert 'id="snapshots-until"' in confirm and "まで有効です" in confirm
