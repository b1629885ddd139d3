"""The filter of registered exact keys: it rules out what nobody registered, and never a registered key.

Transactional tests on PostgreSQL: the filter is rebuilt from committed rows, and the point of the
freshness tests is a registration committed by another process (its own connection) while this
process's filter is built and in use.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import psycopg
import pytest
from django.conf import settings
from django.db import connection
from rest_framework.test import APIClient

from registry.matching.urls import url_key
from registry.models import Organization
from registry.selectors import key_filter as key_filter_module
from registry.selectors import phash_index as phash_index_module
from registry.selectors.key_filter import key_filter, registered_candidates
from registry.selectors.phash_index import phash_index
from registry.services.api_keys import do_api_key_create
from registry.services.references import Content, contents_add
from registry.services.works import do_work_register
from registry.warm import YOUNG_COLLECTION_THRESHOLD, check_path_warm
from tests.conftest import OPERATOR

pytestmark = pytest.mark.django_db(transaction=True)

SHA = "ab" * 32


@pytest.fixture(autouse=True)
def postgresql_only():
    if connection.vendor != "postgresql":
        pytest.skip("the key filter runs on PostgreSQL only (SQLite looks every key up)")


@pytest.fixture
def fresh_filter():
    """This process's filter for the test database, built now from what is committed."""
    key_filter_module._filters.clear()
    built = key_filter()
    built.warm()
    assert built.ready
    return built


@pytest.fixture
def checker(developer):
    _, raw = do_api_key_create(acting=OPERATOR, organization=developer, scopes=["checks"])
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")

    def check(items: list[dict]) -> list[dict]:
        response = client.post("/api/v1/checks", {"purpose": "train-ai", "items": items}, format="json")
        assert response.status_code == 200, response.content[:500]
        return json.loads(response.content)["results"]

    return check


def register(studio: Organization, ref: str, *, sha256: str | None = None, **references):
    work = do_work_register(acting=OPERATOR, organization=studio, external_ref=ref, title=ref, **references)
    if sha256:
        contents_add(contents=[(work.pk, Content(sha256=sha256, phash=None))])
    return work


def test_registered_keys_are_candidates_and_keys_nobody_registered_are_ruled_out(studio):
    register(studio, "W-1", sha256=SHA, urls=["https://cdn.aozora.example/cel/1.png", "https://img.aozora.example/*"],
             identifiers=["doi:10.5555/aozora.1"])
    key_filter_module._filters.clear()
    key_filter().warm()
    found = registered_candidates(
        sha256s=[SHA, "cd" * 32],
        urls=[("https://cdn.aozora.example/cel/1.png", "cdn.aozora.example"),
              ("https://img.aozora.example/any/thing.png", "img.aozora.example"),  # the pattern's host
              ("https://elsewhere.example/1.png", "elsewhere.example")],
        identifiers=[("doi", "10.5555/aozora.1"), ("doi", "10.5555/nobody.1")],
    )
    assert found.sha256s == {SHA}
    assert found.urls == {"https://cdn.aozora.example/cel/1.png", "https://img.aozora.example/any/thing.png"}
    assert found.identifiers == {("doi", "10.5555/aozora.1")}


def test_ruling_keys_out_costs_no_lookup_of_them(fresh_filter, django_assert_max_num_queries):
    # Catching up with the tables: the snapshot and one UNION of the four key kinds.
    with django_assert_max_num_queries(2):
        found = registered_candidates(sha256s=[f"{n:064x}" for n in range(1000)])
    assert found.sha256s == set()


def test_a_work_registered_in_another_process_is_found_by_the_very_next_check(fresh_filter, studio, checker):
    items = [{"sha256": SHA}, {"url": "https://cdn.aozora.example/cel/7.png"}, {"identifier": "doi:10.5555/aozora.7"}]
    assert [r["decision"] for r in checker(items)] == ["unregistered"] * 3
    assert fresh_filter.ready  # the filter answered those, not a fallback to the database
    _register_in_another_process(studio, "W-7", sha256=SHA, url="https://cdn.aozora.example/cel/7.png",
                                 identifier="doi:10.5555/aozora.7")
    results = checker(items)
    assert [r["decision"] for r in results] == ["not_permitted"] * 3
    assert all(r["matches"][0]["title"] == "W-7" for r in results)


def test_a_registration_that_commits_after_a_later_one_is_still_found(fresh_filter, studio, checker):
    # A transaction takes the lower id and stays open while a later registration commits: the
    # filter sees the later id first, and must not skip the earlier one when it commits.
    late_url = "https://cdn.aozora.example/cel/late.png"
    work = register(studio, "W-late")
    with psycopg.connect(_dsn()) as slow:
        slow.execute(
            "INSERT INTO registry_workurl (work_id, url, is_pattern, host, url_hash, created_at) "
            "VALUES (%s, %s, false, %s, %s, now())",
            [work.pk, late_url, "cdn.aozora.example", url_key(late_url)],
        )
        register(studio, "W-early", urls=["https://cdn.aozora.example/cel/early.png"])
        assert checker([{"url": "https://cdn.aozora.example/cel/early.png"}])[0]["decision"] == "not_permitted"
        assert checker([{"url": late_url}])[0]["decision"] == "unregistered"  # not committed yet
        slow.commit()
    assert checker([{"url": late_url}])[0]["decision"] == "not_permitted"


def test_a_filter_that_differs_from_the_tables_stops_ruling_out_until_rebuilt(fresh_filter, studio, monkeypatch):
    work = register(studio, "W-gone", urls=["https://cdn.aozora.example/cel/gone.png"])
    assert registered_candidates(sha256s=[SHA]).sha256s == set()
    work.urls.all().delete()  # the reconciliation sees a row missing
    monkeypatch.setattr(key_filter_module, "RECONCILE_SECONDS", 0.0)
    rebuilt = []
    monkeypatch.setattr(fresh_filter, "_rebuild_in_background", lambda: rebuilt.append(True))
    registered_candidates(sha256s=[SHA])  # due: the reconciliation starts, off the request path
    fresh_filter._reconciler.join(timeout=30)
    assert rebuilt and not fresh_filter.ready
    assert registered_candidates(sha256s=[SHA]).sha256s == {SHA}  # every key goes to the database


def test_a_filter_that_matches_the_tables_keeps_ruling_out_after_reconciling(fresh_filter, studio, monkeypatch):
    register(studio, "W-kept", urls=["https://cdn.aozora.example/cel/kept.png"])
    monkeypatch.setattr(key_filter_module, "RECONCILE_SECONDS", 0.0)
    registered_candidates(sha256s=[SHA])
    fresh_filter._reconciler.join(timeout=30)
    assert fresh_filter.ready
    assert registered_candidates(sha256s=[SHA]).sha256s == set()


def _dsn() -> str:
    db = settings.DATABASES["default"]
    return f"host={db['HOST'] or '127.0.0.1'} port={db['PORT'] or 5432} dbname={db['NAME']} user={db['USER']}"


def _register_in_another_process(studio: Organization, ref: str, *, sha256: str, url: str, identifier: str) -> None:
    db = settings.DATABASES["default"]
    script = textwrap.dedent(f"""
        import django
        django.setup()
        from django.db import transaction
        from registry.access import Actor
        from registry.models import Organization
        from registry.services.references import Content, contents_add
        from registry.services.works import do_work_register
        with transaction.atomic():
            work = do_work_register(acting=Actor.for_operator("another process"),
                                    organization=Organization.objects.get(pk={studio.pk}), external_ref={ref!r},
                                    title={ref!r}, urls=[{url!r}], identifiers=[{identifier!r}])
            contents_add(contents=[(work.pk, Content(sha256={sha256!r}, phash=None))])
    """)
    env = {
        **os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings",
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}",
        "CONN_MAX_AGE": "0",
    }
    subprocess.run([sys.executable, "-c", script], env=env, check=True, timeout=120, cwd=settings.BASE_DIR)


def test_warming_a_worker_builds_its_filter_and_maps_the_shared_near_match_index(studio):
    register(studio, "W-warm", sha256=SHA)
    key_filter_module._filters.clear()
    phash_index_module._indexes.clear()
    check_path_warm()
    assert key_filter().ready and key_filter().stats()["keys"] == 1
    assert phash_index("default").stats()["generation"] >= 1  # mapped before any near-match request


def test_warming_a_worker_prepares_the_checks_statements_and_records_nothing(studio):
    from registry.models import Check, WorkAccess

    register(studio, "W-warm", sha256=SHA, urls=["https://cdn.aozora.example/cel/1.png"],
             identifiers=["doi:10.5555/aozora.1"])

    def prepared() -> set[str]:
        with connection.cursor() as cursor:
            cursor.execute("SELECT statement FROM pg_prepared_statements")
            return {statement for statement, in cursor.fetchall()}

    before = prepared()
    check_path_warm()
    new = prepared() - before
    # The lookups by key and the statement that loads the matched works' facts, ready before any request.
    assert any("registry_contentfile" in statement for statement in new), new
    assert any("registry_grant" in statement for statement in new), new
    assert not Check.objects.exists() and not WorkAccess.objects.exists()


def test_warming_a_worker_loads_what_its_first_request_would_and_freezes_it_out_of_the_collector():
    db = settings.DATABASES["default"]
    script = textwrap.dedent("""
        import gc, json, sys
        import django
        django.setup()
        from registry.warm import check_path_warm
        before = "registry.api.checks" in sys.modules
        check_path_warm()
        print(json.dumps({"before": before, "after": "registry.api.checks" in sys.modules,
                          "frozen": gc.get_freeze_count(), "young": gc.get_threshold()[0]}))
    """)
    env = {
        **os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings",
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}",
    }
    done = subprocess.run([sys.executable, "-c", script], env=env, check=True, timeout=120, cwd=settings.BASE_DIR,
                          capture_output=True, text=True)
    state = json.loads(done.stdout.strip().splitlines()[-1])
    assert state["before"] is False and state["after"] is True  # the view modules came in with the URLconf
    assert state["frozen"] > 10_000
    assert state["young"] == YOUNG_COLLECTION_THRESHOLD  # a check's objects die before a collection sees them
