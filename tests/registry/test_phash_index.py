"""The near-match index, shared by every process through one memory-mapped file, stays as fresh as its table."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from django.conf import settings
from django.db import connection, transaction

from registry.decisions.load import facts_load
from registry.decisions.parse import parse_items
from registry.matching.fingerprints import phash_bands
from registry.models import ContentFile, PerceptualHash
from registry.selectors import phash_index as phash_index_module
from registry.selectors.matching import works_by_phash
from registry.services.works import do_work_register
from tests.conftest import OPERATOR

pytestmark = pytest.mark.django_db

BASE = 0x1234_5678_9ABC_DEF0


def add_hash(studio, ref: str, value: int, *, pk: int | None = None) -> PerceptualHash:
    work = do_work_register(acting=OPERATOR, organization=studio, external_ref=ref, title=ref, kind="image")
    content = ContentFile.objects.create(work=work, sha256=f"{abs(hash(ref)):064x}"[:64])
    return PerceptualHash.objects.create(pk=pk, content_file=content, work=work, value=value,
                                         **dict(zip(("band0", "band1", "band2"), phash_bands(value), strict=True)))


def found(value: int, distance: int = 8) -> dict:
    return works_by_phash([(value, distance)])[0]


def test_a_hash_added_after_loading_is_found_on_the_next_lookup(studio):
    found(BASE)  # loads the index
    row = add_hash(studio, "late", BASE ^ 0b111)
    assert found(BASE) == {row.work_id: 3}


def test_a_deleted_hash_no_longer_matches(studio):
    row = add_hash(studio, "gone", BASE ^ 0b1)
    assert found(BASE) == {row.work_id: 1}
    PerceptualHash.objects.filter(pk=row.pk).delete()
    assert found(BASE) == {}


def test_a_check_no_longer_lists_a_work_whose_hash_was_deleted(studio):
    # The decision's load confirms the index's candidates in the same round trip as the works' facts.
    row = add_hash(studio, "gone-from-check", BASE ^ 0b1)
    items = parse_items([{"phash": f"{BASE:016x}"}])
    assert facts_load(items).similar[0] == {row.work_id: 1}
    PerceptualHash.objects.filter(pk=row.pk).delete()
    facts = facts_load(items)
    assert facts.similar[0] == {} and row.work_id not in facts.similar_works


@pytest.mark.django_db(transaction=True)  # committed rows, as other processes write them
def test_merging_the_tail_keeps_every_answer(studio, monkeypatch):
    monkeypatch.setattr(phash_index_module.PhashIndex, "MERGE_TAIL_AT", 2)
    rows = [add_hash(studio, f"m{n}", BASE ^ (1 << n)) for n in range(5)]
    assert found(BASE) == {row.work_id: 1 for row in rows}
    assert found(BASE ^ (1 << 63), 0) == {}


@pytest.mark.django_db(transaction=True)  # committed rows, as other processes write them
def test_a_row_committed_behind_the_highest_id_is_found_after_reconciling(studio, monkeypatch):
    newest = add_hash(studio, "newest", BASE ^ (1 << 40))
    found(BASE)
    # A transaction that took a lower id commits after a higher one was already read.
    behind = add_hash(studio, "behind", BASE ^ (1 << 20), pk=newest.pk - 1)
    assert behind.work_id not in found(BASE)  # inside the reconcile window: fails closed
    monkeypatch.setattr(phash_index_module, "RECONCILE_SECONDS", 0.0)
    index = phash_index_module.phash_index("default")
    found(BASE)  # due: the comparison starts, off the request path
    index._reconciler.join(timeout=30)
    assert found(BASE) == {newest.work_id: 1, behind.work_id: 1}  # the next lookup rebuilt


needs_postgresql = pytest.mark.skipif(
    not os.environ.get("DATABASE_URL", "").startswith(("postgres://", "postgresql://")),
    reason="the shared index serves PostgreSQL only",
)


@needs_postgresql
@pytest.mark.django_db(transaction=True)  # committed rows, as other processes write them
def test_every_process_maps_one_shared_index_file_and_follows_its_new_generations(studio):
    add_hash(studio, "first", BASE ^ 0b1)
    fresh_committed_index()
    one, other = phash_index_module.PhashIndex("default"), phash_index_module.PhashIndex("default")
    one.warm()
    other.warm()
    built = one.stats()
    # The second one mapped what the first built: same generation, the arrays once in the page cache.
    assert other.stats() == built and built["hashes"] == 1 and built["shared_bytes"] > 0
    row = add_hash(studio, "second", BASE ^ 0b11)
    other._rebuild(phash_index_module.index_path("default"), stale_generation=built["generation"])
    assert other.stats()["generation"] == built["generation"] + 1
    # The first re-maps the new file (the old mapping stays valid until then) and answers from it.
    assert {work for work in one.candidates([(BASE, 8)]).rows[0]} >= {row.work_id}
    assert one.stats()["generation"] == built["generation"] + 1


@needs_postgresql
@pytest.mark.django_db(transaction=True)
def test_a_worker_process_maps_the_index_another_process_built(studio):
    rows = [add_hash(studio, f"p{n}", BASE ^ (1 << n)) for n in range(3)]
    phash_index_module._indexes.clear()
    db = settings.DATABASES["default"]
    script = (
        "import django; django.setup()\n"
        "from registry.selectors.phash_index import phash_index\n"
        "index = phash_index('default'); index.warm(); print(index.stats()['generation'])\n"
    )
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings", "CONN_MAX_AGE": "0",
           "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"}
    path = phash_index_module.index_path("default")
    if os.path.exists(path):
        os.unlink(path)
    built = subprocess.run([sys.executable, "-c", script], env=env, check=True, capture_output=True, text=True,
                           timeout=120, cwd=settings.BASE_DIR)
    generation = int(built.stdout.strip().splitlines()[-1])
    index = phash_index_module.phash_index("default")
    index.warm()
    assert index.stats()["generation"] == generation  # mapped, not rebuilt
    assert found(BASE) == {row.work_id: 1 for row in rows}


def fresh_committed_index() -> None:
    """The next lookup builds the shared file from committed rows, outside any transaction."""
    path = phash_index_module.index_path("default")
    if os.path.exists(path):
        os.unlink(path)
    phash_index_module._indexes.clear()


class Statements:
    """The text of every statement sent (an execute wrapper: pipelined statements too)."""

    def __init__(self) -> None:
        self.sql: list[str] = []

    def __call__(self, execute, sql, params, many, context):
        self.sql.append(sql)
        return execute(sql, params, many, context)

    @property
    def confirmed_rows(self) -> bool:
        return any("FROM registry_perceptualhash p JOIN registry_work" in sql for sql in self.sql)


def loaded(items) -> tuple:
    statements = Statements()
    with connection.execute_wrapper(statements):
        facts = facts_load(items)
    return facts, statements.confirmed_rows


@needs_postgresql
@pytest.mark.django_db(transaction=True)
def test_while_no_hash_row_was_removed_a_check_lists_similar_works_without_confirming_each_row(studio):
    kept, gone = add_hash(studio, "kept", BASE ^ 0b1), add_hash(studio, "gone", BASE ^ 0b11)
    fresh_committed_index()
    items = parse_items([{"phash": f"{BASE:016x}"}])
    facts, confirmed = loaded(items)
    assert facts.similar[0] == {kept.work_id: 1, gone.work_id: 2}
    assert facts.similar_works[kept.work_id].title == "kept"
    assert not confirmed  # by work: one index descent a row, not three
    PerceptualHash.objects.filter(pk=gone.pk).delete()  # committed: the database's removal count moves
    facts, confirmed = loaded(items)
    assert facts.similar[0] == {kept.work_id: 1} and gone.work_id not in facts.similar_works
    assert confirmed
    index = phash_index_module.phash_index("default")
    assert not index._matches_table()  # so the next reconciliation rebuilds, and rows stand unconfirmed again
    index._rebuild(phash_index_module.index_path("default"), stale_generation=index.stats()["generation"])
    facts, confirmed = loaded(items)
    assert facts.similar[0] == {kept.work_id: 1} and not confirmed


@needs_postgresql
@pytest.mark.django_db(transaction=True)
def test_a_changed_hash_row_is_confirmed_again_and_a_rolled_back_one_never_listed(studio):
    row = add_hash(studio, "changed", BASE ^ 0b1)
    fresh_committed_index()
    assert found(BASE) == {row.work_id: 1}
    index = phash_index_module.phash_index("default")
    assert index.candidates([(BASE, 8)]).current
    PerceptualHash.objects.filter(pk=row.pk).update(value=BASE ^ 0b111)
    assert not index.candidates([(BASE, 8)]).current and not index._matches_table()
    index._rebuild(phash_index_module.index_path("default"), stale_generation=index.stats()["generation"])
    assert index.candidates([(BASE, 8)]).current
    # A row a transaction added is found inside it, and kept by no tail: rolled back, it never was.
    with pytest.raises(RuntimeError), transaction.atomic():
        late = add_hash(studio, "rolled-back", BASE ^ 0b11)
        assert late.work_id in found(BASE)
        raise RuntimeError
    assert index.candidates([(BASE, 8)]).current
    assert late.work_id not in found(BASE)
    assert late.work_id not in facts_load(parse_items([{"phash": f"{BASE:016x}"}])).similar[0]


@pytest.mark.parametrize("packed", [bytes(16), b"\xff" * 16, os.urandom(16), os.urandom(16), bytes(range(16))])
def test_a_work_id_read_from_the_index_is_the_uuid_its_bytes_spell(packed):
    import uuid

    made = phash_index_module._uuid_of(packed)
    expected = uuid.UUID(bytes=packed)
    assert type(made) is uuid.UUID
    assert (made, hash(made), str(made), made.is_safe, made.bytes) == (
        expected, hash(expected), str(expected), expected.is_safe, packed)
    assert {expected: 1}[made] == 1


@needs_postgresql
@pytest.mark.django_db(transaction=True)
def test_a_due_reconciliation_counts_the_table_in_a_thread_of_its_own_not_in_the_lookup(studio, monkeypatch):
    row = add_hash(studio, "counted", BASE ^ 0b1)
    fresh_committed_index()
    found(BASE)
    monkeypatch.setattr(phash_index_module, "RECONCILE_SECONDS", 0.0)
    statements = Statements()
    with connection.execute_wrapper(statements):
        assert found(BASE) == {row.work_id: 1}
    index = phash_index_module.phash_index("default")
    assert index._reconciler is not None and index._reconciler.name == "kyoka-phash-reconcile"
    assert not any("count(*)" in sql for sql in statements.sql)  # the lookup's connection never counted
    index._reconciler.join(timeout=30)
    assert index._differs_at is None  # the table holds what the index holds: nothing to rebuild


@needs_postgresql
@pytest.mark.django_db(transaction=True)
def test_without_its_counter_row_the_index_still_finds_new_hashes_and_confirms_every_match(studio):
    first = add_hash(studio, "before", BASE ^ 0b1)
    fresh_committed_index()
    index = phash_index_module.phash_index("default")
    assert index.candidates([(BASE, 8)]).current
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM registry_phash_removals")
    try:
        later = add_hash(studio, "after", BASE ^ 0b11)
        found_now = index.candidates([(BASE, 8)])
        assert set(found_now.rows[0]) == {first.work_id, later.work_id} and not found_now.current
        assert found(BASE) == {first.work_id: 1, later.work_id: 2}
    finally:
        with connection.cursor() as cursor:
            cursor.execute("INSERT INTO registry_phash_removals VALUES (1, 0)")


def _signed(value: int) -> int:
    return value - (1 << 64) if value >= 1 << 63 else value


@needs_postgresql
@pytest.mark.django_db(transaction=True)  # committed rows, as other processes write them
def test_the_rows_newer_than_the_file_are_found_as_the_file_finds_them(studio, monkeypatch):
    fresh_committed_index()
    found(BASE)  # the file is built now: every row below is newer, in this process's tail
    high = BASE | (1 << 63)  # the top bit set: stored as a negative number
    values = [BASE ^ ((1 << n) - 1) for n in range(0, 14)] + [high ^ ((1 << n) - 1) for n in (0, 5, 9)]
    rows = [add_hash(studio, f"tail{n}", _signed(value)) for n, value in enumerate(values)]
    queries = [(BASE, d) for d in (0, 3, 8, 12)] + [(high, 8), (_signed(high), 4), (high ^ 0b1, 0)]
    from_tail = works_by_phash(queries)
    assert phash_index_module.phash_index("default").stats()["hashes"] == len(rows)
    mask = (1 << 64) - 1
    assert from_tail == [
        {row.work_id: d for row, value in zip(rows, values, strict=True)
         if (d := ((value ^ query) & mask).bit_count()) <= limit}
        for query, limit in queries
    ]
    monkeypatch.setattr(phash_index_module.PhashIndex, "MERGE_TAIL_AT", 1)
    from_file = works_by_phash(queries)  # the tail merged into a new file first
    assert len(phash_index_module.phash_index("default")._tail.ids) == 0
    assert from_file == from_tail


@needs_postgresql
@pytest.mark.django_db(transaction=True)
def test_warming_rebuilds_a_file_that_no_longer_holds_the_table(studio):
    gone = add_hash(studio, "gone", BASE ^ 0b1)
    fresh_committed_index()
    earlier = phash_index_module.PhashIndex("default")
    earlier.warm()
    built = earlier.stats()
    # Rows deleted and others written while no process ran (a database made again under the same name).
    PerceptualHash.objects.filter(pk=gone.pk).delete()
    kept = add_hash(studio, "kept", BASE ^ 0b11)
    starting = phash_index_module.PhashIndex("default")
    starting.warm()
    assert starting.stats()["generation"] == built["generation"] + 1
    assert starting.stats()["hashes"] == 1 and len(starting._tail.ids) == 0
    assert starting.candidates([(BASE, 8)]).rows[0].keys() == {kept.work_id}


def _near_facts(values: list[int]):
    items = parse_items([{"phash": f"{value & ((1 << 64) - 1):016x}", "max_distance": 8} for value in values])
    facts = facts_load(items)
    return facts.similar, {work: (s.title, s.owner_slug) for work, s in facts.similar_works.items()}


@needs_postgresql
@pytest.mark.django_db(transaction=True)  # committed rows, as other processes write them
@pytest.mark.parametrize("removed", [False, True], ids=["rows current", "rows confirmed"])
def test_many_near_match_items_searched_in_two_halves_answer_as_one_search(studio, monkeypatch, removed):
    from registry.decisions import load

    rows = [add_hash(studio, f"h{n}", BASE ^ (0b11 << (2 * n))) for n in range(6)]
    gone = add_hash(studio, "gone", BASE ^ (1 << 40))
    far = add_hash(studio, "far", BASE ^ (0x3FF << 48))  # near the second half's queries only
    fresh_committed_index()
    found(BASE)  # the index reads every row now
    if removed:  # a row deleted after the index read it: every candidate row is confirmed, in both halves
        PerceptualHash.objects.filter(pk=gone.pk).delete()
    # The same works near queries of both halves, some near one half only, and queries near nothing.
    values = [BASE ^ (1 << n) for n in range(14)] + [BASE ^ (0x3FF << 48) ^ n for n in range(6)] + [~BASE] * 4
    assert len(values) >= load.NEAR_SPLIT_AT
    statements = Statements()
    with connection.execute_wrapper(statements):
        halves = _near_facts(values)
    listing = "registry_perceptualhash p" if removed else "WITH ORDINALITY"
    assert sum(listing in sql for sql in statements.sql) == 2  # one listing per half
    monkeypatch.setattr(load, "NEAR_SPLIT_AT", 10_000)
    whole = _near_facts(values)
    assert halves == whole
    similar, listed = halves
    assert set(similar[0]) >= {row.work_id for row in rows[:3]} and set(similar[-1]) == set()
    assert (gone.work_id in listed) is not removed and far.work_id in listed
    assert set(similar[14]) == {far.work_id} and far.work_id not in similar[0]
    assert all(listed[work] == (f"h{n}", studio.slug) for n, work in enumerate(r.work_id for r in rows))
