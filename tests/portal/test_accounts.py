"""Accounts in the portal: one normal form for addresses, confirmed addresses, no oracles, throttled logins."""

from __future__ import annotations

import re
from urllib.parse import quote

import pytest
from django.contrib.auth import get_user_model
from django.core import mail
from django.test import Client
from django.urls import reverse

from registry.models import AuditEvent, Membership, Organization, UserProfile
from registry.services.accounts import account_sign_up, email_confirmation_token

pytestmark = pytest.mark.django_db

User = get_user_model()
PASSWORD = "a-long-pass-phrase-7"
# Mail leaves after the commit: these tests commit for real, so the after-commit tasks run.
MAILS = pytest.mark.django_db(transaction=True)


def confirmation_link() -> str:
    match = re.search(r"https?://[^/\s]+(/accounts/confirm/[^/\s]+/)", mail.outbox[-1].body)
    assert match, mail.outbox[-1].body
    return match.group(1)


# --- Sign-up -------------------------------------------------------------------------------------

def test_signup_with_a_full_width_letter_is_a_form_error_not_a_500(client, make_user):
    make_user("owner@aozora.example")
    response = client.post(reverse("web:signup"), {"email": "owner@\uff41ozora.example", "password": PASSWORD})
    assert response.status_code == 200
    assert "characters that stand for other ones" in response.content.decode()
    assert User.objects.count() == 1 and mail.outbox == []


def test_signup_of_a_look_alike_address_never_makes_an_account_for_the_plain_one(client):
    response = client.post(reverse("web:signup"), {"email": "newhire@\uff56ictim.example", "password": PASSWORD})
    assert response.status_code == 200
    assert not User.objects.filter(username="newhire@victim.example").exists()


def test_signup_error_is_in_japanese_for_a_japanese_reader(client):
    response = client.post(reverse("web:signup"), {"email": "owner@\uff41ozora.example", "password": PASSWORD},
                           HTTP_ACCEPT_LANGUAGE="ja")
    assert "半角" in response.content.decode()


@MAILS
def test_signup_answers_the_same_whether_or_not_the_address_has_an_account(client, make_user):
    make_user("taken@example.com")
    taken = client.post(reverse("web:signup"), {"email": "Taken@Example.com", "password": PASSWORD})
    fresh = Client().post(reverse("web:signup"), {"email": "fresh@example.com", "password": PASSWORD})
    assert taken.status_code == fresh.status_code == 302
    assert taken["Location"] == fresh["Location"] == reverse("web:signup_sent")
    assert "_auth_user_id" not in client.session
    # The owner of each address learns which case it was; the visitor does not.
    by_recipient = {message.to[0]: message for message in mail.outbox}
    assert "already" in by_recipient["taken@example.com"].body
    assert "/accounts/confirm/" in by_recipient["fresh@example.com"].body
    assert User.objects.filter(username="taken@example.com").count() == 1


def test_an_unconfirmed_account_logs_in_and_sees_only_the_confirm_page(client):
    client.post(reverse("web:signup"), {"email": "new@example.com", "password": PASSWORD})
    response = client.post(reverse("web:login"), {"username": "new@example.com", "password": PASSWORD})
    assert response.status_code == 302 and "_auth_user_id" in client.session
    for path in (reverse("web:home"), reverse("web:organization_create"), reverse("web:members")):
        assert client.get(path)["Location"] == reverse("web:email_confirm_pending"), path
    sneaky = client.post(reverse("web:organization_create"), {"name": "Sneaky", "kind": "rightsholder"})
    assert sneaky.status_code == 302
    assert not Organization.objects.filter(name="Sneaky").exists()
    api = client.get("/api/v1/works")
    assert api.status_code == 403 and api.json()["error"]["code"] == "email_unconfirmed"
    assert "confirm that new@example.com is yours" in client.get(reverse("web:email_confirm_pending")).content.decode()


@MAILS
def test_the_confirm_page_sends_the_link_again(client):
    client.post(reverse("web:signup"), {"email": "again@example.com", "password": PASSWORD})
    client.post(reverse("web:login"), {"username": "again@example.com", "password": PASSWORD})
    mail.outbox.clear()
    client.post(reverse("web:email_confirm_pending"))
    assert mail.outbox[0].to == ["again@example.com"] and "/accounts/confirm/" in mail.outbox[0].body


@MAILS
def test_the_link_confirms_only_once_its_account_logs_in(client):
    client.post(reverse("web:signup"), {"email": "new@example.com", "password": PASSWORD})
    link = confirmation_link()
    response = client.get(link)
    assert response["Location"] == f"{reverse('web:login')}?next={quote(link)}"
    assert UserProfile.objects.get(user__username="new@example.com").email_confirmed_at is None
    response = client.post(f"{reverse('web:login')}?next={link}",
                           {"username": "new@example.com", "password": PASSWORD, "next": link})
    assert response["Location"] == link
    assert client.get(link)["Location"] == reverse("web:home")
    assert client.get(reverse("web:home"))["Location"] == reverse("web:organization_create")


@MAILS
def test_a_squatted_address_is_not_confirmed_by_its_owners_click_and_a_reset_takes_it_back(client):
    Client().post(reverse("web:signup"), {"email": "victim@example.com", "password": "the-squatters-password-1"})
    link = confirmation_link()
    # The real owner clicks: they cannot log in with a password they never chose.
    owner = Client()
    assert owner.get(link)["Location"].startswith(reverse("web:login"))
    assert UserProfile.objects.get(user__username="victim@example.com").email_confirmed_at is None
    # A password reset (the mailbox again) sets their own password and confirms the address.
    owner.post(reverse("web:password_reset"), {"email": "victim@example.com"})
    reset = re.search(r"(/accounts/reset/[^/\s]+/[^/\s]+/)", mail.outbox[-1].body).group(1)
    form_page = owner.get(reset, follow=True)
    new_password = {"new_password1": "owners-own-pass-9", "new_password2": "owners-own-pass-9"}
    assert owner.post(form_page.redirect_chain[-1][0], new_password).status_code == 302
    assert UserProfile.objects.get(user__username="victim@example.com").email_confirmed_at is not None
    squatter = Client()
    squatter.post(reverse("web:login"), {"username": "victim@example.com", "password": "the-squatters-password-1"})
    assert "_auth_user_id" not in squatter.session


@MAILS
def test_signup_confirm_then_create_a_studio(client):
    client.post(reverse("web:signup"), {"email": "new@example.com", "password": PASSWORD})
    link = confirmation_link()
    client.post(reverse("web:login"), {"username": "new@example.com", "password": PASSWORD})
    assert client.get(link)["Location"] == reverse("web:home")
    assert client.get(reverse("web:organization_create")).status_code == 200
    assert UserProfile.objects.get(user__username="new@example.com").email_confirmed_at is not None
    response = client.post(reverse("web:organization_create"), {"name": "Studio Hikari", "kind": "rightsholder"})
    assert response.status_code == 302
    organization = Organization.objects.get(name="Studio Hikari")
    assert organization.memberships.get().role == Membership.Role.OWNER
    assert client.get(reverse("web:home")).url == reverse("web:studio_dashboard")
    assert AuditEvent.objects.filter(action="account.confirm_email").count() == 1


def test_a_forged_or_foreign_confirmation_link_confirms_nothing(client):
    account_sign_up(email="victim@example.com", password=PASSWORD)
    victim = User.objects.get(username="victim@example.com")
    forged = email_confirmation_token(victim)[:-2] + "xx"
    assert client.get(reverse("web:email_confirm", args=[forged])).status_code == 404
    # A token made for the address the account had before no longer confirms it.
    old = email_confirmation_token(victim)
    victim.email = "changed@example.com"
    victim.save()
    assert client.get(reverse("web:email_confirm", args=[old])).status_code == 404
    assert UserProfile.objects.get(user=victim).email_confirmed_at is None


@MAILS
def test_password_reset_finds_the_account_by_its_normal_form_and_mails_the_stored_address(client, make_user):
    make_user("forgot@example.com")
    client.post(reverse("web:password_reset"), {"email": "FORGOT@example.com"})
    assert [m.to for m in mail.outbox] == [["forgot@example.com"]]
    assert re.search(r"/accounts/reset/[^/]+/[^/]+/", mail.outbox[0].body)


@MAILS
def test_password_reset_of_a_full_width_spelling_mails_only_the_real_address(client, make_user):
    make_user("forgot@example.com")
    client.post(reverse("web:password_reset"), {"email": "forgot@\uff45xample.com"})
    assert [m.to for m in mail.outbox] == [["forgot@example.com"]]


# --- Login throttle ------------------------------------------------------------------------------

def login(client: Client, username: str, password: str, **extra) -> str:
    return client.post(reverse("web:login"), {"username": username, "password": password}, **extra).content.decode()


def test_failed_logins_are_throttled(client, make_user, settings):
    settings.KYOKA_LOGIN_FAILURE_LIMIT = 3
    make_user("throttled@example.com")
    for _ in range(3):
        assert "do not match" in login(client, "throttled@example.com", "wrong")
    # The right password no longer helps until the lockout ends.
    assert "Too many failed attempts" in login(client, "throttled@example.com", "pw-12345!")
    assert "_auth_user_id" not in client.session


def test_login_works_below_the_limit(client, make_user):
    make_user("fine@example.com")
    login(client, "fine@example.com", "wrong")
    response = client.post(reverse("web:login"), {"username": "fine@example.com", "password": "pw-12345!"})
    assert response.status_code == 302


def test_a_successful_login_forgets_that_pairs_failures_only(make_user, settings):
    settings.KYOKA_LOGIN_FAILURE_LIMIT = 3
    settings.KYOKA_LOGIN_ADDRESS_FAILURE_LIMIT = 4
    make_user("typo@example.com")
    client = Client(REMOTE_ADDR="198.51.100.8")
    for _ in range(2):
        login(client, "typo@example.com", "wrong")
    right = client.post(reverse("web:login"), {"username": "typo@example.com", "password": "pw-12345!"})
    assert right.status_code == 302
    client.logout()
    for _ in range(2):
        assert "do not match" in login(client, "typo@example.com", "wrong")
    # Four failures from this address in all: the per-address counter was not reset by the success.
    assert "Too many failed attempts" in login(client, "typo@example.com", "pw-12345!")


def test_full_width_and_upper_case_spellings_share_one_counter(client, make_user, settings):
    settings.KYOKA_LOGIN_FAILURE_LIMIT = 3
    make_user("throttled@example.com")
    for spelling in ("throttled@\uff45xample.com", "THROTTLED@example.com", "\uff54hrottled@example.com"):
        assert "do not match" in login(client, spelling, "wrong")
    assert "Too many failed attempts" in login(client, "throttled@example.com", "pw-12345!")
    assert "_auth_user_id" not in client.session


def test_a_full_width_spelling_of_the_right_address_logs_in(client, make_user):
    make_user("wide@example.com")
    response = client.post(reverse("web:login"), {"username": "wide@\uff45xample.com", "password": "pw-12345!"})
    assert response.status_code == 302 and "_auth_user_id" in client.session


def test_a_lockout_from_one_address_does_not_lock_the_user_out_from_another(make_user, settings):
    settings.KYOKA_LOGIN_FAILURE_LIMIT = 3
    make_user("target@example.com")
    attacker = Client(REMOTE_ADDR="203.0.113.9")
    for _ in range(5):
        login(attacker, "target@example.com", "wrong")
    assert "Too many failed attempts" in login(attacker, "target@example.com", "pw-12345!")
    owner = Client(REMOTE_ADDR="198.51.100.4")
    response = owner.post(reverse("web:login"), {"username": "target@example.com", "password": "pw-12345!"})
    assert response.status_code == 302


def test_many_addresses_against_one_user_meet_the_much_higher_per_user_limit(make_user, settings):
    settings.KYOKA_LOGIN_FAILURE_LIMIT = 3
    settings.KYOKA_LOGIN_USER_FAILURE_LIMIT = 6
    make_user("target@example.com")
    for n in range(6):
        login(Client(REMOTE_ADDR=f"203.0.113.{n + 1}"), "target@example.com", "wrong")
    fresh = Client(REMOTE_ADDR="198.51.100.4")
    assert "Too many failed attempts" in login(fresh, "target@example.com", "pw-12345!")


def test_one_address_spraying_many_users_is_stopped(make_user, settings):
    settings.KYOKA_LOGIN_ADDRESS_FAILURE_LIMIT = 4
    make_user("last@example.com")
    sprayer = Client(REMOTE_ADDR="203.0.113.7")
    for n in range(4):
        login(sprayer, f"user{n}@example.com", "wrong")
    assert "Too many failed attempts" in login(sprayer, "last@example.com", "pw-12345!")


def test_the_site_wide_ceiling_stops_a_distributed_attack(make_user, settings):
    settings.KYOKA_LOGIN_GLOBAL_FAILURE_LIMIT = 5
    make_user("any@example.com")
    for n in range(5):
        login(Client(REMOTE_ADDR=f"203.0.113.{n + 1}"), f"user{n}@example.com", "wrong")
    assert "Too many failed attempts" in login(Client(REMOTE_ADDR="198.51.100.4"), "any@example.com", "pw-12345!")


def test_x_forwarded_for_is_believed_only_from_a_trusted_proxy(make_user, settings):
    settings.KYOKA_LOGIN_FAILURE_LIMIT = 3
    settings.TRUSTED_PROXIES = ["10.0.0.0/8"]
    make_user("target@example.com")
    # Behind the proxy: the client's address keys the counter, so another client is not locked out.
    for _ in range(3):
        login(Client(REMOTE_ADDR="10.0.0.2"), "target@example.com", "wrong", HTTP_X_FORWARDED_FOR="203.0.113.9")
    locked = Client(REMOTE_ADDR="10.0.0.2")
    assert "Too many failed attempts" in login(
        locked, "target@example.com", "pw-12345!", HTTP_X_FORWARDED_FOR="203.0.113.9")
    other = Client(REMOTE_ADDR="10.0.0.2")
    response = other.post(reverse("web:login"), {"username": "target@example.com", "password": "pw-12345!"},
                          HTTP_X_FORWARDED_FOR="198.51.100.4")
    assert response.status_code == 302
    # From anyone else the header is the client's own claim: a fresh value per try changes nothing.
    direct = Client(REMOTE_ADDR="192.0.2.50")
    for n in range(3):
        login(direct, "target@example.com", "wrong", HTTP_X_FORWARDED_FOR=f"198.51.100.{n + 10}")
    assert "Too many failed attempts" in login(
        direct, "target@example.com", "pw-12345!", HTTP_X_FORWARDED_FOR="198.51.100.99")


def test_the_admin_login_is_throttled_the_same_way(client, make_user, settings):
    settings.KYOKA_LOGIN_FAILURE_LIMIT = 3
    make_user("staff@example.com", is_staff=True)
    url = reverse("admin:login")
    for _ in range(3):
        client.post(url, {"username": "staff@example.com", "password": "wrong"})
    response = client.post(url, {"username": "staff@example.com", "password": "pw-12345!"})
    assert response.status_code == 200 and "Too many failed attempts" in response.content.decode()
    assert "_auth_user_id" not in client.session


def test_an_administrator_whose_username_is_no_address_still_logs_in(client, make_user):
    User.objects.create_superuser(username="Admin", email="admin@example.com", password="pw-12345!")
    response = client.post(reverse("admin:login"), {"username": "Admin", "password": "pw-12345!"})
    assert response.status_code == 302 and "_auth_user_id" in client.session


def test_the_admin_and_the_portal_share_the_counter(client, make_user, settings):
    settings.KYOKA_LOGIN_FAILURE_LIMIT = 3
    make_user("staff@example.com", is_staff=True)
    for _ in range(3):
        login(client, "staff@\uff45xample.com", "wrong")
    response = client.post(reverse("admin:login"), {"username": "staff@example.com", "password": "pw-12345!"})
    assert "Too many failed attempts" in response.content.decode()


def test_the_counter_lives_in_redis_with_an_expiry(client, make_user, settings):
    import redis
    from django.core.cache import cache

    settings.KYOKA_LOGIN_LOCKOUT_SECONDS = 120
    make_user("ttl@example.com")
    login(client, "ttl@example.com", "wrong")
    raw = redis.Redis.from_url(settings.REDIS_URL)
    keys = raw.keys(cache.make_key("login-failures:*"))
    assert len(keys) == 4  # pair, user, address, site
    assert all(0 < raw.ttl(key) <= 120 for key in keys)
    assert not any(b"ttl@example.com" in key for key in keys)


# --- Invitations ---------------------------------------------------------------------------------

def invitation_path() -> str:
    match = re.search(r"https?://[^/\s]+(/invitations/[^/\s]+/)", mail.outbox[-1].body)
    assert match, mail.outbox[-1].body
    return match.group(1)


def test_inviting_answers_the_same_whether_or_not_the_address_has_an_account(studio, studio_client, make_user):
    make_user("known@example.com")
    known = studio_client.post(reverse("web:member_invite"), {"email": "known@example.com", "role": "viewer"},
                               follow=True)
    unknown = studio_client.post(reverse("web:member_invite"), {"email": "unknown@example.com", "role": "viewer"},
                                 follow=True)
    said = [[str(m) for m in response.context["messages"]] for response in (known, unknown)]
    assert said == [["Invitation sent to known@example.com. It joins nobody until they accept it."],
                    ["Invitation sent to unknown@example.com. It joins nobody until they accept it."]]
    assert studio.memberships.count() == 1  # the owner alone: nobody was bound


@MAILS
def test_an_existing_account_joins_only_by_accepting(studio, studio_client, make_user):
    artist = make_user("artist@example.com")
    studio_client.post(reverse("web:member_invite"), {"email": "Artist@example.com", "role": "manager"})
    link = invitation_path()
    members_page = studio_client.get(reverse("web:members")).content.decode()
    assert "artist@example.com" in members_page and "Pending invitations" in members_page
    assert not studio.memberships.filter(user=artist).exists()

    anonymous = Client().get(link).content.decode()
    assert "Log in to answer" in anonymous
    invitee = Client()
    invitee.force_login(artist)
    assert "Accept and join" in invitee.get(link).content.decode()
    response = invitee.post(link, {"answer": "accept"})
    assert response.status_code == 302
    assert studio.memberships.get(user=artist).role == Membership.Role.MANAGER
    assert "no longer open" in invitee.get(link).content.decode()


@MAILS
def test_someone_else_holding_the_link_cannot_accept_it(studio, studio_client, make_user):
    studio_client.post(reverse("web:member_invite"), {"email": "artist@example.com", "role": "owner"})
    link = invitation_path()
    intruder = Client()
    intruder.force_login(make_user("intruder@example.com"))
    assert "logged in with another address" in intruder.get(link).content.decode()
    intruder.post(link, {"answer": "accept"})
    assert not studio.memberships.filter(user__username="intruder@example.com").exists()


@MAILS
def test_a_newcomer_accepts_by_choosing_a_password(studio, studio_client):
    studio_client.post(reverse("web:member_invite"), {"email": "newcomer@example.com", "role": "viewer"})
    link = invitation_path()
    newcomer = Client()
    assert "Create my account and join" in newcomer.get(link).content.decode()
    response = newcomer.post(link, {"answer": "accept", "password": PASSWORD})
    assert response.status_code == 302 and "_auth_user_id" in newcomer.session
    assert studio.memberships.get(user__username="newcomer@example.com").role == Membership.Role.VIEWER
    # The link proved the address: the account is not held at the confirm page.
    assert newcomer.get(reverse("web:home")).status_code == 302
    assert newcomer.get(reverse("web:home"))["Location"] != reverse("web:email_confirm_pending")


@MAILS
def test_the_invitee_may_decline(studio, studio_client, make_user):
    artist = make_user("artist@example.com")
    studio_client.post(reverse("web:member_invite"), {"email": "artist@example.com", "role": "viewer"})
    invitee = Client()
    invitee.force_login(artist)
    link = invitation_path()
    assert "artist@example.com" in studio_client.get(reverse("web:members")).content.decode()
    invitee.post(link, {"answer": "decline"})
    assert not studio.memberships.filter(user=artist).exists()
    assert studio.invitations.get().status == "declined"
    assert "artist@example.com" not in studio_client.get(reverse("web:members")).content.decode()


@MAILS
def test_an_owner_withdraws_a_pending_invitation(studio, studio_client):
    studio_client.post(reverse("web:member_invite"), {"email": "artist@example.com", "role": "viewer"})
    link = invitation_path()
    invitation = studio.invitations.get()
    studio_client.post(reverse("web:invitation_revoke", args=[invitation.pk]))
    assert "no longer open" in Client().get(link).content.decode()


def test_another_organisations_invitation_cannot_be_withdrawn(studio, make_org, studio_client):
    other = make_org(name="Other Studio")
    from registry.access import Actor
    from registry.services.accounts import invitation_create
    from tests.conftest import owner_of

    theirs = invitation_create(actor=Actor.for_user(owner_of(other)), organization=other,
                               email="x@example.com", role="viewer")
    assert studio_client.post(reverse("web:invitation_revoke", args=[theirs.pk])).status_code == 404
    theirs.refresh_from_db()
    assert theirs.status == "pending"


def test_a_viewer_cannot_invite(studio, member):
    from tests.portal.conftest import client_for

    viewer = member(studio, Membership.Role.VIEWER)
    response = client_for(viewer.user).post(reverse("web:member_invite"), {"email": "x@example.com", "role": "owner"})
    assert response.status_code == 403
    assert not studio.invitations.exists()


def test_viewers_do_not_see_pending_invitations(studio, studio_client, member):
    from tests.portal.conftest import client_for

    studio_client.post(reverse("web:member_invite"), {"email": "secret-hire@example.com", "role": "viewer"})
    viewer = member(studio, Membership.Role.VIEWER)
    assert "secret-hire@example.com" not in client_for(viewer.user).get(reverse("web:members")).content.decode()


def test_the_owner_changes_a_members_role(studio, studio_client, member):
    manager = member(studio, Membership.Role.MANAGER)
    membership = studio.memberships.get(user=manager.user)
    studio_client.post(reverse("web:member_role", args=[membership.pk]), {"role": "viewer"})
    membership.refresh_from_db()
    assert membership.role == Membership.Role.VIEWER


def test_production_settings_hash_passwords_with_argon2():
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    env = {k: v for k, v in os.environ.items() if k not in ("DEBUG", "DJANGO_SETTINGS_MODULE")}
    env.update(DJANGO_SETTINGS_MODULE="portal.settings.production", SECRET_KEY="k" * 30 + "-argon2-proof-" + "z" * 30,
               ALLOWED_HOSTS="kyoka.example")
    script = ("import django; django.setup(); from django.contrib.auth.hashers import make_password, check_password; "
              "h = make_password('pw'); print(h.split('$')[0], check_password('pw', h))")
    result = subprocess.run([sys.executable, "-c", script], cwd=root, env=env, capture_output=True, text=True,
                            timeout=120)
    assert result.stdout.split() == ["argon2", "True"], result.stderr


def test_concurrent_failures_are_all_counted(settings):
    """Forty failures at once from eight threads: the Redis counter ends at exactly forty."""
    from concurrent.futures import ThreadPoolExecutor

    import redis
    from django.core.cache import cache
    from django.test import RequestFactory

    from portal.login_throttle import login_failed

    request = RequestFactory().post("/")
    request.client_address = "203.0.113.77"
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(lambda _n: login_failed(request, "Busy@Example.com"), range(40)))
    raw = redis.Redis.from_url(settings.REDIS_URL)
    counts = sorted(int(raw.get(key)) for key in raw.keys(cache.make_key("login-failures:*")))
    assert counts == [40, 40, 40, 40]
