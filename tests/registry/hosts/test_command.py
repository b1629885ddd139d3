"""manage.py verifyhost --org SLUG --host HOST: a reviewer's confirmation from the command line."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from registry.models import AuditEvent, VerifiedHost

pytestmark = pytest.mark.django_db


def run(*args) -> str:
    out = io.StringIO()
    call_command("verifyhost", *args, stdout=out, stderr=io.StringIO())
    return out.getvalue().strip()


def test_verifyhost_proves_the_host_and_its_subdomains_under_an_operator_label(studio):
    assert run("--org", studio.slug, "--host", "Aozora.Example", "--note", "registrar record seen") == "aozora.example"
    claim = VerifiedHost.objects.get(organization=studio)
    assert (claim.host, claim.method, claim.covers_subdomains) == ("aozora.example", "reviewer", True)
    assert claim.verified_at is not None and claim.covers("cdn.aozora.example")
    event = AuditEvent.objects.get(action="host.confirmed")
    assert event.actor == "operator:manage.py verifyhost"
    assert event.data["note"] == "registrar record seen" and event.data["claimed_now"] is True


def test_verifyhost_twice_changes_nothing(studio):
    run("--org", studio.slug, "--host", "aozora.example")
    run("--org", studio.slug, "--host", "aozora.example")
    assert VerifiedHost.objects.count() == 1 and AuditEvent.objects.filter(action="host.confirmed").count() == 1


def test_verifyhost_refuses_a_public_suffix(studio):
    with pytest.raises(CommandError, match="public suffix"):
        run("--org", studio.slug, "--host", "co.jp")
    assert not VerifiedHost.objects.exists()


def test_verifyhost_refuses_an_unknown_organisation():
    with pytest.raises(CommandError, match="No organisation"):
        run("--org", "nobody", "--host", "aozora.example")


def test_verifyhost_refuses_an_ai_developer(developer):
    with pytest.raises(CommandError, match="rightsholder"):
        run("--org", developer.slug, "--host", "acme.example")


def test_seeddemo_proves_the_demo_studios_hosts_so_demo_urls_permit():
    import json

    from rest_framework.test import APIClient

    from registry.models import Organization
    from registry.services.api_keys import do_api_key_create
    from tests.conftest import OPERATOR

    call_command("seeddemo", stdout=io.StringIO(), stderr=io.StringIO())
    call_command("seeddemo", stdout=io.StringIO(), stderr=io.StringIO())  # again: nothing new to prove
    claims = {c.host: c for c in VerifiedHost.objects.select_related("organization")}
    assert set(claims) == {"aozora.example", "kumo.example"}
    assert claims["aozora.example"].organization.slug == "studio-aozora"
    assert all(c.method == "reviewer" and c.covers_subdomains for c in claims.values())
    assert AuditEvent.objects.filter(action="host.confirmed").count() == 2
    _, raw = do_api_key_create(acting=OPERATOR, organization=Organization.objects.get(slug="acme-ai"),
                               scopes=["checks"])
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    response = client.post("/api/v1/checks", {"purpose": "train-genai", "territory": "JP", "items": [
        {"url": "https://cdn.aozora.example/sora/s1/e1/cel-0001.png"}]}, format="json")
    [result] = json.loads(response.content)["results"]
    assert (result["decision"], result["permitted"]) == ("permitted", True)
    # Without the proof the same URL is registered but has no standing.
    from registry.services.hosts import do_host_remove

    do_host_remove(acting=OPERATOR, claim=claims["aozora.example"])
    response = client.post("/api/v1/checks", {"purpose": "train-genai", "territory": "JP", "items": [
        {"url": "https://cdn.aozora.example/sora/s1/e1/cel-0001.png"}]}, format="json")
    [result] = json.loads(response.content)["results"]
    assert (result["decision"], result["permitted"], result["reason"]) == ("not_permitted", False, "host_unverified")
