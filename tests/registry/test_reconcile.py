"""registry/selectors/reconcile.py: comparisons with the tables, off the request path and spread out."""

from __future__ import annotations

import pytest
from django.db import connection, connections

from registry.selectors.reconcile import ReconcileSchedule, reconcile_in_background, reconcile_spread


def test_each_comparison_is_due_within_the_period_at_a_moment_of_its_own():
    spreads = [reconcile_spread() for _ in range(200)]
    assert all(0.5 <= spread <= 1.0 for spread in spreads)
    # Workers warmed in the same second do not come due together.
    assert max(spreads) - min(spreads) > 0.2


def test_a_schedule_is_due_at_first_and_again_only_after_its_share_of_the_period():
    schedule = ReconcileSchedule()
    assert schedule.due(30.0)  # never compared: due at the first look
    schedule.restart()
    assert not schedule.due(30.0) and schedule.due(0.0)
    assert 0.5 <= schedule.spread <= 1.0


@pytest.mark.django_db(transaction=True)  # the comparison runs on a connection of its own thread
def test_the_comparison_counts_on_one_core_and_leaves_this_connection_as_it_was():
    if connection.vendor != "postgresql":
        pytest.skip("parallel query is PostgreSQL's")
    seen: list[str] = []

    def holds() -> bool:
        with connections["default"].cursor() as cursor:  # the thread's own connection
            cursor.execute("SHOW max_parallel_workers_per_gather")
            seen.append(cursor.fetchone()[0])
        return True

    thread = reconcile_in_background(using="default", name="test-reconcile", holds=holds,
                                     on_difference=lambda: seen.append("differs"))
    thread.join(timeout=30)
    assert seen == ["0"]
    with connection.cursor() as cursor:
        cursor.execute("SHOW max_parallel_workers_per_gather")
        assert cursor.fetchone()[0] != "0"
