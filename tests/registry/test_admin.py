"""Admin actions change state through the services: role checks and audit events included."""

from __future__ import annotations

import pytest
from django.urls import reverse

from registry.models import AuditEvent, Grant
from registry.services.api_keys import do_api_key_create
from registry.services.grants import do_grant_issue
from tests.conftest import OPERATOR

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
