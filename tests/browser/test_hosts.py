"""Web hosts in a real browser: claim, ask Kyoka to look, and watch the proof arrive (HTMX polling).

The worker's part is played by the test: the lookup it would run is run here, with the network
boundary faked as in tests/registry/hosts (a worker subprocess could not share the fake).
"""

from __future__ import annotations

import pytest

from registry.models import VerifiedHost
from registry.services.hosts import do_host_verify_lookup
from registry.tasks import host_verify
from tests.browser.conftest import log_in
from tests.conftest import owner_of
from tests.registry.hosts.conftest import network, tls_server  # noqa: F401 - the faked network boundary

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def queued(monkeypatch) -> list[dict]:
    sent: list[dict] = []
    monkeypatch.setattr(host_verify, "delay", lambda **kwargs: sent.append(kwargs))
    return sent


def test_a_studio_claims_asks_kyoka_to_look_and_sees_the_proof_arrive_without_reloading(
        open_page, studio, queued, network):  # noqa: F811 - the fixture imported above
    page = open_page()
    log_in(page, owner_of(studio).email)
    page.goto("/studio/hosts/")
    page.fill("input[name=host]", "Example.com")
    page.click("#host-claim-form button[type=submit]")
    page.wait_for_url("**/studio/hosts/example.com/")
    claim = VerifiedHost.objects.get(organization=studio)
    assert page.locator("#txt-value").inner_text() == f"kyoka-verification={claim.token}"
    page.evaluate("window.kyokaSamePage = true")  # gone if anything below reloads the page
    page.click("#host-verify")
    page.locator('#host-status [data-state="checking"]').wait_for()
    assert [q["host_id"] for q in queued] == [claim.pk]
    # What the worker does with the message, here with the network faked (the DNS record is in place).
    network.txt["example.com"] = [f"kyoka-verification={claim.token}"]
    do_host_verify_lookup(**queued[0])
    page.locator('#host-status [data-state="verified"]').wait_for(timeout=10_000)  # the status polls
    assert "every name under it" in page.locator("#host-status").inner_text()
    assert page.evaluate("window.kyokaSamePage") is True  # the button and the polling swapped fragments in
