from __future__ import annotations

import io

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from registry.models import ApiKey, ContentFile, Grant, Organization, Work
from registry.services.api_keys import hash_api_key

pytestmark = pytest.mark.django_db


def run(*args) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out, stderr=io.StringIO())
    return out.getvalue().strip()


def test_createorg_prints_the_slug_and_creates_a_verified_owner_org():
    slug = run("createorg", "--kind", "rightsholder", "--name", "Studio Ghibli Test", "--owner-email",
               "boss@ghibli.example", "--verified")
    org = Organization.objects.get(slug=slug)
    assert slug == "studio-ghibli-test" and org.verified_at is not None
    assert org.memberships.get().user.email == "boss@ghibli.example"


def test_createapikey_prints_a_key_that_is_stored_only_as_a_hash():
    slug = run("createorg", "--kind", "ai_developer", "--name", "Acme", "--owner-email", "a@acme.example")
    raw = run("createapikey", "--org", slug, "--scopes", "checks")
    key = ApiKey.objects.get()
    assert key.secret_hash == hash_api_key(raw) and raw not in str(key.__dict__)
    assert key.scopes == ["checks"]
    with pytest.raises(CommandError):
        run("createapikey", "--org", "nobody")
    with pytest.raises(CommandError):
        run("createapikey", "--org", slug, "--scopes", "root")


def test_seeddemo_is_idempotent():
    first = run("seeddemo")
    counts = (Work.objects.count(), ContentFile.objects.count(), Grant.objects.count(), Organization.objects.count())
    run("seeddemo")
    again = (Work.objects.count(), ContentFile.objects.count(), Grant.objects.count(), Organization.objects.count())
    assert counts == again
    assert 45 <= counts[0] <= 60 and counts[1] >= 30 and counts[2] >= 5 and counts[3] == 3
    assert Organization.objects.get(slug="kumo-pictures").verified_at is None
    assert "owner@acme-ai.example" in first and "kyoka_" in first
    # Re-running retires the previous demo keys: only the newest pair works.
    assert ApiKey.objects.filter(revoked_at__isnull=True).count() == 2


def test_createorg_stores_the_owner_under_the_normal_form_of_the_address():
    slug = run("createorg", "--kind", "rightsholder", "--name", "Studio Case", "--owner-email", "Boss@Case.Example")
    owner = Organization.objects.get(slug=slug).memberships.get().user
    assert (owner.username, owner.email) == ("boss@case.example", "boss@case.example")
    with pytest.raises(CommandError, match="plain characters"):
        run("createorg", "--kind", "rightsholder", "--name", "Look-alike", "--owner-email", "boss@\uff43ase.example")
