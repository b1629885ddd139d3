"""The lookup task's delivery settings: redelivery is safe, and a running lookup is never handed on."""

from __future__ import annotations

import inspect

from django.conf import settings

from registry.hosts import proof
from registry.tasks import host_verify


def test_the_task_takes_primitive_keyword_arguments_only():
    parameters = inspect.signature(host_verify.run).parameters
    assert {name: p.kind for name, p in parameters.items()} == {
        "host_id": inspect.Parameter.KEYWORD_ONLY, "requested_by": inspect.Parameter.KEYWORD_ONLY}


def test_the_task_is_acknowledged_late_and_bounded_well_inside_the_visibility_timeout():
    assert host_verify.acks_late is True and host_verify.reject_on_worker_lost is True
    # Two methods, each within LOOKUP_SECONDS, fit well inside the soft limit.
    assert 2 * proof.LOOKUP_SECONDS < host_verify.soft_time_limit < host_verify.time_limit
    visibility_timeout = settings.CELERY_BROKER_TRANSPORT_OPTIONS.get("visibility_timeout")
    if visibility_timeout is not None:  # Redis; the filesystem transport has no such timeout
        assert host_verify.time_limit < visibility_timeout
