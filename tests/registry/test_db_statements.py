"""registry/db_statements.py: planner settings the fixed and bulk statements rely on."""

from __future__ import annotations

import pytest
from django.db import connection, transaction

from registry.db_statements import lookups_by_index

pytestmark = pytest.mark.django_db

LOOKUP = "EXPLAIN SELECT work_id FROM registry_workurl WHERE url_hash = ANY(%s)"


def _plan() -> str:
    with connection.cursor() as cursor:
        cursor.execute(LOOKUP, [[f"{n:064x}" for n in range(200)]])
        return "\n".join(line for line, in cursor.fetchall())


def _seqscan() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SHOW enable_seqscan")
        return cursor.fetchone()[0]


@pytest.fixture
def postgresql():
    if connection.vendor != "postgresql":
        pytest.skip("planner settings are PostgreSQL's")


def test_a_lookup_by_keys_inside_reads_the_index_when_the_statistics_would_scan(postgresql):
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL random_page_cost = 1000")  # every index probe now looks ruinous
        assert "Seq Scan" in _plan()
        with lookups_by_index("default"):
            inside = _plan()
        assert "Seq Scan" not in inside and "Index" in inside
        assert "Seq Scan" in _plan() and _seqscan() == "on"  # put back on a clean exit


def test_an_error_inside_takes_the_setting_back_with_its_savepoint(postgresql):
    with transaction.atomic():
        with pytest.raises(RuntimeError), transaction.atomic(), lookups_by_index("default"):
            assert _seqscan() == "off"
            raise RuntimeError("the chunk failed")
        assert _seqscan() == "on"


@pytest.mark.django_db(transaction=True)
def test_outside_a_transaction_nothing_is_set(postgresql):
    with lookups_by_index("default"):
        assert _seqscan() == "on"
