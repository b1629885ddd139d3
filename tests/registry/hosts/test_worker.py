"""The lookup task run by a real Celery worker process on the real Redis and PostgreSQL.

The worker is a subprocess, so nothing in it can be faked: the claim here is one no lookup may
ever touch the network for (an IP literal, as a row written before the rules would hold), and the
test pins that the worker refuses it before any network and records why.
"""

from __future__ import annotations

import pytest

from registry.access import Actor
from registry.models import AuditEvent, VerifiedHost
from registry.services.hosts import do_host_verify_request
from tests.conftest import owner_of
from tests.registry.uploads.conftest import wait_for

pytestmark = [pytest.mark.celery_worker, pytest.mark.django_db(transaction=True)]


def test_a_worker_runs_the_lookup_and_refuses_an_ip_literal_before_any_network(celery_worker, studio):
    claim = VerifiedHost.objects.create(organization=studio, host="127.0.0.1")
    requester = Actor.for_user(owner_of(studio))
    do_host_verify_request(acting=requester, claim=claim)
    wait_for(lambda: VerifiedHost.objects.get(pk=claim.pk).last_checked_at is not None, timeout=60, interval=0.2,
             what="the worker's lookup")
    claim.refresh_from_db()
    assert claim.verified_at is None and claim.method == ""
    assert claim.last_error == '[{"method":"host","code":"ip_literal","detail":""}]'
    event = AuditEvent.objects.get(action="host.verification_failed", object_id=str(claim.pk))
    assert event.actor == "operator:host-lookup"
    assert event.data["requested_by"] == requester.label
    assert event.data["problems"] == [{"method": "host", "code": "ip_literal", "detail": ""}]
    assert "Task registry.tasks.host_verify[" in celery_worker.output()
