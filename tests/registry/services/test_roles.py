"""Every service checks the acting user's role (or key scope) before it changes anything."""

from __future__ import annotations

import pytest

from registry.access import Actor
from registry.exceptions import PermissionDenied
from registry.models import AuditEvent, Grant, Membership, Organization, Work
from registry.services.api_keys import api_key_create, api_key_revoke, api_key_suspend, do_api_key_create
from registry.services.grants import do_grant_issue, grant_issue, grant_revoke, grant_revoke_by_reviewer
from registry.services.organizations import membership_add, organization_verify
from registry.services.works import content_file_add, work_register, work_update, work_withdraw
from tests.conftest import OPERATOR, owner_of

pytestmark = pytest.mark.django_db

ROLES = [Membership.Role.VIEWER, Membership.Role.MANAGER, Membership.Role.OWNER]


def register(org, actor=None, ref="W-1"):
    return work_register(actor=actor or Actor.for_user(owner_of(org)), organization=org, external_ref=ref,
        title="A work", kind="image")


@pytest.fixture
def outsider(make_org):
    other = make_org(Organization.Kind.RIGHTSHOLDER)
    return Actor.for_user(owner_of(other))


@pytest.mark.parametrize("role,allowed", [("viewer", False), ("manager", True), ("owner", True)])
def test_work_register_needs_manager(studio, member, role, allowed):
    actor = member(studio, role)
    if allowed:
        assert register(studio, actor).owner == studio
    else:
        with pytest.raises(PermissionDenied):
            register(studio, actor)
        assert not Work.objects.exists()


def test_outsider_cannot_register_update_or_withdraw(studio, outsider):
    with pytest.raises(PermissionDenied):
        register(studio, outsider)
    work = register(studio)
    with pytest.raises(PermissionDenied):
        work_update(actor=outsider, work=work, title="Mine now")
    with pytest.raises(PermissionDenied):
        work_withdraw(actor=outsider, work=work)
    work.refresh_from_db()
    assert (work.title, work.status) == ("A work", "active")


@pytest.mark.parametrize("role,allowed", [("viewer", False), ("manager", True), ("owner", True)])
def test_work_update_and_withdraw_need_manager(studio, member, role, allowed):
    work = register(studio)
    actor = member(studio, role)
    if allowed:
        assert work_update(actor=actor, work=work, title="Renamed").title == "Renamed"
        assert work_withdraw(actor=actor, work=work).status == "withdrawn"
    else:
        with pytest.raises(PermissionDenied):
            work_update(actor=actor, work=work, title="Renamed")
        with pytest.raises(PermissionDenied):
            work_withdraw(actor=actor, work=work)


@pytest.mark.parametrize("role,allowed", [("viewer", False), ("manager", True)])
def test_content_file_add_needs_manager(studio, member, png_file, role, allowed):
    work = register(studio)
    actor = member(studio, role)
    if allowed:
        assert content_file_add(actor=actor, work=work, fileobj=png_file(), filename="a.png").sha256
    else:
        with pytest.raises(PermissionDenied):
            content_file_add(actor=actor, work=work, fileobj=png_file(), filename="a.png")
        assert not work.files.exists()


@pytest.mark.parametrize("role,allowed", [("viewer", False), ("manager", True), ("owner", True)])
def test_grant_issue_and_revoke_need_manager(studio, developer, member, role, allowed):
    actor = member(studio, role)
    if allowed:
        grant = grant_issue(actor=actor, grantor=studio, scope="catalog", licensee=developer, purposes=["train-ai"])
        assert grant_revoke(actor=actor, grant=grant, reason="ended").revoked_at is not None
    else:
        with pytest.raises(PermissionDenied):
            grant_issue(actor=actor, grantor=studio, scope="catalog", licensee=developer, purposes=["train-ai"])
        grant = do_grant_issue(acting=OPERATOR, grantor=studio, scope="catalog", licensee=developer, purposes=["tdm"])
        with pytest.raises(PermissionDenied):
            grant_revoke(actor=actor, grant=grant)
        grant.refresh_from_db()
        assert grant.revoked_at is None


def test_outsider_cannot_issue_grants_for_another_studio(studio, developer, outsider):
    with pytest.raises(PermissionDenied):
        grant_issue(actor=outsider, grantor=studio, scope="catalog", licensee=developer, purposes=["all"])
    assert not Grant.objects.exists()


@pytest.mark.parametrize("role,allowed", [("viewer", False), ("manager", False), ("owner", True)])
def test_membership_add_needs_owner(studio, member, make_user, role, allowed):
    actor = member(studio, role)
    newcomer = make_user()
    if allowed:
        assert membership_add(actor=actor, organization=studio, user=newcomer, role="viewer").role == "viewer"
    else:
        with pytest.raises(PermissionDenied):
            membership_add(actor=actor, organization=studio, user=newcomer, role="owner")
        assert not Membership.objects.filter(user=newcomer).exists()


@pytest.mark.parametrize("role,allowed", [("manager", False), ("owner", True)])
def test_api_keys_need_owner(developer, member, role, allowed):
    actor = member(developer, role)
    if allowed:
        key, raw = api_key_create(actor=actor, organization=developer, scopes=["checks"])
        assert raw.startswith(f"kyoka_{key.prefix}_") and raw not in key.secret_hash
        assert api_key_revoke(actor=actor, api_key=key).revoked_at is not None
    else:
        with pytest.raises(PermissionDenied):
            api_key_create(actor=actor, organization=developer, scopes=["checks"])


def test_only_reviewers_verify_organisations_and_suspend_keys(make_org, reviewer, developer):
    studio = make_org(verified=False)
    owner = Actor.for_user(owner_of(studio))
    with pytest.raises(PermissionDenied):
        organization_verify(actor=owner, organization=studio)
    studio.refresh_from_db()
    assert studio.verified_at is None
    verified = organization_verify(actor=Actor.for_user(reviewer), organization=studio)
    assert verified.verified_by == reviewer
    key, _ = do_api_key_create(acting=OPERATOR, organization=developer, scopes=["checks"])
    with pytest.raises(PermissionDenied):
        api_key_suspend(actor=Actor.for_user(owner_of(developer)), api_key=key)
    assert api_key_suspend(actor=Actor.for_user(reviewer), api_key=key).suspended_at is not None


def test_api_key_acts_only_within_its_scopes_and_organisation(studio, make_org):
    key, _ = do_api_key_create(acting=OPERATOR, organization=studio, scopes=["works:read"])
    with pytest.raises(PermissionDenied, match="works:write"):
        register(studio, Actor.for_key(key))
    writer, _ = do_api_key_create(acting=OPERATOR, organization=studio, scopes=["works:write"])
    assert register(studio, Actor.for_key(writer)).owner == studio
    other = make_org()
    with pytest.raises(PermissionDenied):
        register(other, Actor.for_key(writer), ref="X")


def test_refused_actions_write_no_audit_event(studio, member):
    before = AuditEvent.objects.count()
    with pytest.raises(PermissionDenied):
        register(studio, member(studio, "viewer"))
    # member() itself appended one event (membership.set); the refused registration none.
    assert AuditEvent.objects.count() == before + 1


def test_reviewers_revoke_any_grant_through_their_own_service_and_the_audit_names_them(studio, developer, reviewer):
    grant = do_grant_issue(acting=OPERATOR, grantor=studio, scope="catalog", licensee=developer, purposes=["tdm"])
    with pytest.raises(PermissionDenied):  # the grantor's service is for the grantor's managers only
        grant_revoke(actor=Actor.for_user(reviewer), grant=grant, reason="fraud")
    with pytest.raises(PermissionDenied):  # and the reviewers' service for reviewers only
        grant_revoke_by_reviewer(actor=Actor.for_user(owner_of(studio)), grant=grant, reason="fraud")
    assert grant_revoke_by_reviewer(actor=Actor.for_user(reviewer), grant=grant, reason="fraud").revoked_by == reviewer
    event = AuditEvent.objects.get(action="grant.revoke", object_id=str(grant.pk))
    assert event.actor.endswith(reviewer.username)
