"""Two reviewers deciding the same dispute at once: one decision, applied once."""

from __future__ import annotations

import threading
import time

import pytest
from django.contrib.auth.models import Group
from django.db import connection

from registry.access import REVIEWER_GROUP, Actor
from registry.exceptions import InvalidTransition
from registry.models import AuditEvent, Dispute, Grant, Work
from registry.services import disputes as dispute_services
from registry.services.audit import audit_verify
from registry.services.disputes import dispute_decide, dispute_start_review
from registry.services.grants import do_grant_issue
from tests.conftest import OPERATOR


@pytest.mark.django_db(transaction=True)
def test_two_reviewers_deciding_at_once_cannot_both_decide(
    studio, rival, register_image, reviewer, make_user, monkeypatch
):
    register_image(studio, seed=1)
    copy = register_image(rival, seed=1)
    grant = do_grant_issue(acting=OPERATOR, grantor=rival, scope="work", work=copy, purposes=["train-ai"])
    dispute = dispute_start_review(actor=Actor.for_user(reviewer), dispute=Dispute.objects.get())
    second_reviewer = make_user(is_staff=True)
    second_reviewer.groups.add(Group.objects.get(name=REVIEWER_GROUP))

    # Hold the first decision inside its transaction long enough for the second to arrive.
    apply_effects = dispute_services._decision_effects

    def slow_effects(*args, **kwargs):
        time.sleep(0.5)
        return apply_effects(*args, **kwargs)

    monkeypatch.setattr(dispute_services, "_decision_effects", slow_effects)

    start = threading.Barrier(2)
    outcomes: dict[str, object] = {}

    def decide(name: str, user, outcome: str, remedy: str) -> None:
        try:
            start.wait()
            dispute_decide(
                actor=Actor.for_user(user), dispute=dispute, outcome=outcome, reason=f"{name} says so",
                remedy=remedy,
            )
            outcomes[name] = "decided"
        except InvalidTransition as exc:
            outcomes[name] = exc
        finally:
            connection.close()  # each thread has its own connection

    threads = [
        threading.Thread(target=decide, args=("first", reviewer, "upheld", "withdraw")),
        threading.Thread(target=decide, args=("second", second_reviewer, "rejected", "")),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert len(outcomes) == 2
    assert [v for v in outcomes.values() if v == "decided"] == ["decided"]
    assert [type(v) for v in outcomes.values() if v != "decided"] == [InvalidTransition]
    final = Dispute.objects.get()
    winner = next(name for name, value in outcomes.items() if value == "decided")
    assert final.decision_reason == f"{winner} says so"
    assert AuditEvent.objects.filter(action="dispute.decide").count() == 1
    if final.status == "upheld":
        assert Work.objects.get(pk=copy.pk).status == "withdrawn"
        assert AuditEvent.objects.filter(action="grant.revoke").count() == 1
        assert Grant.objects.get(pk=grant.pk).revoked_at is not None
    else:
        assert Work.objects.get(pk=copy.pk).status == "active"
        assert AuditEvent.objects.filter(action="work.withdraw").count() == 1
    assert audit_verify().ok
