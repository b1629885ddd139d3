"""The demo shows a living registry: checks on the activity chart, an open dispute, a pending verification."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command

from registry.models import Check, Dispute, VerificationRequest, WorkAccess

pytestmark = pytest.mark.django_db


def test_seeddemo_leaves_every_page_with_content_and_runs_twice_alike():
    call_command("seeddemo", stdout=io.StringIO())
    counts = (Check.objects.count(), Dispute.objects.count(), VerificationRequest.objects.count())
    assert counts == (3, 1, 1)
    assert WorkAccess.objects.filter(work__owner__slug="studio-aozora").exists()
    assert Dispute.objects.get().status == "open" and Dispute.objects.get().statement_code
    assert VerificationRequest.objects.get().organization.slug == "kumo-pictures"
    call_command("seeddemo", stdout=io.StringIO())
    assert (Check.objects.count(), Dispute.objects.count(), VerificationRequest.objects.count()) == counts
