"""Admin actions change state through the services: role checks and audit events included."""

from __future__ import annotations

import pytest
from django.urls import reverse

from registry.access import Actor
from registry.models import AuditEvent, Grant, VerificationRequest
from registry.services.api_keys import do_api_key_create
from registry.services.grants import do_grant_issue
from registry.services.verification import verification_request_submit
from registry.services.works import do_work_register
from tests.conftest import OPERATOR, owner_of

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client, make_user):
    client.force_login(make_user("root@example.com", is_staff=True, is_superuser=True))
    return client


def act(admin_client, model: str, action: str, pks) -> None:
    response = admin_client.post(reverse(f"admin:registry_{model}_changelist"),
                                 {"action": action, "_selected_action": [str(pk) for pk in pks]})
    assert response.status_code == 302


def test_revoking_from_the_admin_goes_through_the_service(admin_client, studio, developer):
    grant = do_grant_issue(acting=OPERATOR, grantor=studio, scope="catalog", licensee=developer, purposes=["tdm"])
    act(admin_client, "grant", "revoke", [grant.pk])
    grant.refresh_from_db()
    assert grant.revoked_at is not None and grant.revocation_reason == "Revoked by an administrator"
    assert AuditEvent.objects.filter(action="grant.revoke", object_id=str(grant.pk)).count() == 1
    act(admin_client, "grant", "revoke", [grant.pk])  # already revoked: reported, not raised
    assert Grant.objects.get(pk=grant.pk).revoked_at == grant.revoked_at


def test_verifying_and_suspending_from_the_admin(admin_client, make_org, developer):
    studio = make_org(verified=False)
    act(admin_client, "organization", "verify", [studio.pk])
    studio.refresh_from_db()
    assert studio.verified_at is not None
    key, _ = do_api_key_create(acting=OPERATOR, organization=developer, scopes=["checks"])
    act(admin_client, "apikey", "suspend", [key.pk])
    key.refresh_from_db()
    assert key.suspended_at is not None
    assert AuditEvent.objects.filter(action="api_key.suspend", object_id=str(key.pk)).exists()


REGISTRY_MODELS = ["organization", "membership", "work", "grant", "dispute", "auditevent", "similarityflag"]


@pytest.fixture
def reviewer_client(client, reviewer):
    client.force_login(reviewer)
    return client


def test_reviewers_read_the_registry_in_the_admin_without_model_permissions(reviewer_client, studio):
    assert reviewer_client.get(reverse("admin:index")).status_code == 200
    for model in REGISTRY_MODELS:
        assert reviewer_client.get(reverse(f"admin:registry_{model}_changelist")).status_code == 200, model
    page = reviewer_client.get(reverse("admin:registry_organization_change", args=[studio.pk]))
    assert page.status_code == 200 and studio.name in page.content.decode()


def test_staff_who_are_not_reviewers_get_nothing_from_the_admin(client, make_user):
    client.force_login(make_user(is_staff=True))
    for model in REGISTRY_MODELS:
        assert client.get(reverse(f"admin:registry_{model}_changelist")).status_code == 403, model


@pytest.mark.parametrize("model", ["organization", "membership", "work", "grant"])
def test_nothing_is_added_changed_or_deleted_in_the_admin(admin_client, model, studio, developer):
    objects = {
        "organization": studio, "membership": studio.memberships.get(),
        "work": do_work_register(acting=OPERATOR, organization=studio, external_ref="W", title="W"),
        "grant": do_grant_issue(acting=OPERATOR, grantor=studio, scope="catalog", licensee=developer,
                                purposes=["tdm"]),
    }
    obj = objects[model]
    assert admin_client.get(reverse(f"admin:registry_{model}_add")).status_code == 403
    assert admin_client.get(reverse(f"admin:registry_{model}_delete", args=[obj.pk])).status_code == 403
    before = AuditEvent.objects.count()
    response = admin_client.post(reverse(f"admin:registry_{model}_change", args=[obj.pk]), {"name": "Renamed",
                                                                                            "slug": "renamed"})
    assert response.status_code == 403
    changelist = admin_client.get(reverse(f"admin:registry_{model}_changelist")).content.decode()
    assert "delete_selected" not in changelist
    assert AuditEvent.objects.count() == before
    if model == "organization":
        studio.refresh_from_db()
        assert (studio.name, studio.slug) == ("Studio Aozora", "studio-aozora")


def test_verifying_in_the_admin_closes_the_pending_verification_request(admin_client, make_org):
    newcomer = make_org(verified=False)
    request = verification_request_submit(actor=Actor.for_user(owner_of(newcomer)), organization=newcomer,
                                          legal_name="KK Newcomer")
    act(admin_client, "organization", "verify", [newcomer.pk])
    request.refresh_from_db()
    assert request.status == VerificationRequest.Status.VERIFIED and request.decided_at is not None
    event = AuditEvent.objects.get(action="organization.verify", object_id=str(newcomer.pk))
    assert event.data["requests"] == [request.pk]


def test_suspending_an_organisation_in_the_admin(reviewer_client, studio):
    act(reviewer_client, "organization", "suspend", [studio.pk])
    studio.refresh_from_db()
    assert studio.suspended_at is not None
    assert AuditEvent.objects.filter(action="organization.suspend", object_id=str(studio.pk)).exists()


def test_a_reviewer_revokes_in_the_admin_and_a_non_reviewer_cannot(client, reviewer, make_user, studio, developer):
    grant = do_grant_issue(acting=OPERATOR, grantor=studio, scope="catalog", licensee=developer, purposes=["tdm"])
    client.force_login(make_user(is_staff=True, is_superuser=False))
    client.post(reverse("admin:registry_grant_changelist"), {"action": "revoke", "_selected_action": [grant.pk]})
    assert Grant.objects.get(pk=grant.pk).revoked_at is None
    client.force_login(reviewer)
    act(client, "grant", "revoke", [grant.pk])
    assert Grant.objects.get(pk=grant.pk).revoked_by == reviewer


def test_the_admin_speaks_japanese_to_a_japanese_reviewer(reviewer_client, studio):
    from django.utils import translation

    with translation.override("ja"):
        index = reviewer_client.get(reverse("admin:index"), HTTP_ACCEPT_LANGUAGE="ja").content.decode()
        organisations = reviewer_client.get(reverse("admin:registry_organization_changelist"),
                                            HTTP_ACCEPT_LANGUAGE="ja").content.decode()
    assert "台帳" in index and "作品" in index and "許諾" in index
    assert ">Registry<" not in index and "Works<" not in index
    assert "選択した組織を認証する" in organisations
