"""The read-replica router: a check's decision reads from the replica only when that changes no answer.

The replica here is a second alias on the same test database (TEST MIRROR), so it is always caught
up; a replica that lags is a standby that reports an older replay position (REPLAYED_SQL), the one
boundary faked here.
"""

from __future__ import annotations

import json
import re

import pytest
from django.db import connection, connections, router
from django.test import override_settings
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from registry import db_router
from registry.db_router import REPLICA, decision_reads
from registry.models import Grant, Work
from registry.services.api_keys import do_api_key_create
from registry.services.works import do_work_register
from tests.conftest import OPERATOR

pytestmark = [
    pytest.mark.django_db(transaction=True, databases=["default", REPLICA]),
    pytest.mark.usefixtures("with_the_router"),
]


@pytest.fixture
def with_the_router():
    if connection.vendor != "postgresql":
        pytest.skip("read replicas are PostgreSQL's")
    with override_settings(DATABASE_ROUTERS=["registry.db_router.ReplicaRouter"]):
        yield


@pytest.fixture
def check(developer):
    _, raw = do_api_key_create(acting=OPERATOR, organization=developer, scopes=["checks"])
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")

    def run(items):
        response = client.post("/api/v1/checks", {"purpose": "train-ai", "items": items}, format="json")
        assert response.status_code == 200, response.content[:500]
        return json.loads(response.content)["results"]

    return run


def test_inside_the_decision_reads_go_to_a_caught_up_replica_and_writes_stay_on_the_primary():
    assert router.db_for_read(Work) == "default"
    with decision_reads() as alias:
        assert alias == REPLICA
        assert (router.db_for_read(Work), router.db_for_read(Grant)) == (REPLICA, REPLICA)
        assert router.db_for_write(Work) == "default"
    assert router.db_for_read(Work) == "default"


def test_a_check_right_after_a_registration_sees_it_and_reads_its_decision_from_the_replica(studio, check):
    do_work_register(acting=OPERATOR, organization=studio, external_ref="R-1", title="Cel one",
                     urls=["https://cdn.aozora.example/cel/1.png"])
    with CaptureQueriesContext(connections[REPLICA]) as on_replica, \
            CaptureQueriesContext(connections["default"]) as on_primary:
        result = check([{"url": "https://cdn.aozora.example/cel/1.png"}])[0]
    assert (result["decision"], result["matches"][0]["title"]) == ("not_permitted", "Cel one")
    replica_sql = " ".join(q["sql"] for q in on_replica.captured_queries)
    assert "registry_workurl" in replica_sql and "registry_work" in replica_sql
    assert not any(re.search(r"\b(INSERT|UPDATE|DELETE)\b", q["sql"], re.IGNORECASE)
                   for q in on_replica.captured_queries)
    # The check's own record is written on the primary.
    assert any(re.search(r'INSERT INTO "?registry_check"?', q["sql"]) for q in on_primary.captured_queries)


def test_a_replica_that_has_not_replayed_everything_is_not_read(studio, check, monkeypatch):
    monkeypatch.setattr(db_router, "REPLAYED_SQL", "SELECT 0::numeric")  # a standby far behind
    monkeypatch.setattr(db_router, "REPLICA_WAIT_SECONDS", 0.01)
    do_work_register(acting=OPERATOR, organization=studio, external_ref="R-2", title="Cel two",
                     urls=["https://cdn.aozora.example/cel/2.png"])
    with decision_reads() as alias:
        assert alias == "default" and router.db_for_read(Work) == "default"
    with CaptureQueriesContext(connections[REPLICA]) as on_replica:
        result = check([{"url": "https://cdn.aozora.example/cel/2.png"}])[0]
    assert (result["decision"], result["matches"][0]["title"]) == ("not_permitted", "Cel two")
    assert "registry_work" not in " ".join(q["sql"] for q in on_replica.captured_queries)
