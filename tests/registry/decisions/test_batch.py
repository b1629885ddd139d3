"""The plain lane (registry/decisions/batch.py) only skips work: it parses every item as
`parse_item` does, and writes an unregistered plain key as `result_render` does."""

from __future__ import annotations

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from registry.decisions.batch import DecidedBatch, PlainKeys, batch_parse
from registry.decisions.parse import MAX_REF_LENGTH, Item, parse_item
from registry.decisions.render import result_render, results_render
from registry.decisions.rules import ItemResult
from registry.decisions.vocabulary import Decision, Reason
from registry.exceptions import ValidationFailed

HEX = "0123456789abcdef"
digests = st.one_of(
    st.text(HEX, min_size=64, max_size=64),
    st.text(HEX + "ABCDEF", min_size=64, max_size=64),  # upper case: valid, but not plain
    st.text(HEX + " g", min_size=63, max_size=66),
    st.integers(),
)
urls = st.one_of(
    st.sampled_from([
        "https://cdn.example/a.png", "HTTPS://Example.COM:443/a/./b/../c?x=1#f", "http://example.com",
        "https://例え.jp/画像.png", "ftp://example.com/a", "https://", "not a url", "https://a.example/%7Ec",
        'https://a.example/q"uote', "https://127.0.0.1/x", "https://a.example:99999/",
    ]),
    st.text(max_size=30).map(lambda path: f"https://web.example/{path}"),
    st.integers(),
)
refs = st.one_of(st.none(), st.text(max_size=5), st.text(min_size=MAX_REF_LENGTH - 2, max_size=MAX_REF_LENGTH + 5),
                 st.integers(), st.sampled_from(['quo"te', "back\\slash", "tab\there", "改行\n", "\u2028"]))
raw_items = st.one_of(
    st.fixed_dictionaries({"sha256": digests}, optional={"ref": refs}),
    st.fixed_dictionaries({"url": urls}, optional={"ref": refs}),
    st.fixed_dictionaries({"sha256": digests, "url": urls}),
    st.fixed_dictionaries({"sha256": digests, "note": st.text(max_size=3)}),
    st.fixed_dictionaries({"phash": st.text(HEX, min_size=16, max_size=16)}, optional={"ref": refs}),
    st.fixed_dictionaries({"identifier": st.sampled_from(["isbn:978-4-04-102622-9", "isbn:1", "x"])}),
    st.just({}), st.just([]), st.just("sha256"), st.none(),
)


def _items_of(column: PlainKeys, *, sha256: bool) -> list[Item]:
    return [
        Item(index, ref, key) if sha256 else Item(index, ref, url=key, url_host=column.hosts[k])
        for k, (index, ref, key) in enumerate(zip(column.indexes, column.refs, column.keys, strict=True))
    ]


@settings(max_examples=300, deadline=None)
@given(st.lists(raw_items, min_size=1, max_size=25))
def test_batch_parse_agrees_with_parse_item(raw):
    batch = batch_parse(raw)
    parsed = [*_items_of(batch.sha256s, sha256=True), *_items_of(batch.urls, sha256=False), *batch.items]
    assert sorted(parsed, key=lambda item: item.index) == [parse_item(n, item) for n, item in enumerate(raw)]
    assert batch.size == len(raw)


def test_plain_items_stay_columns_and_the_rest_become_items():
    batch = batch_parse([
        {"ref": "a", "sha256": "a" * 64}, {"url": "https://cdn.example/x.png"}, {"sha256": "A" * 64},
        {"phash": "c3a1f0e07c3c1e0f"}, {"sha256": "a" * 64, "extra": 1},
    ])
    assert batch.sha256s.indexes == [0] and batch.sha256s.refs == ["a"]
    assert batch.urls.keys == ["https://cdn.example/x.png"] and batch.urls.hosts == ["cdn.example"]
    items = sorted(batch.items, key=lambda item: item.index)
    assert [item.index for item in items] == [2, 3, 4]
    assert items[0].sha256 == "a" * 64  # upper case normalised by parse_item


def test_batch_parse_keeps_the_shared_limits():
    with pytest.raises(ValidationFailed):
        batch_parse({"sha256": "a" * 64})
    with pytest.raises(ValidationFailed):
        batch_parse([])


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.one_of(st.none(), st.text(max_size=8)), st.text(HEX, min_size=64,
                                                                                                max_size=64)),
                min_size=1, max_size=20))
def test_unregistered_plain_keys_render_as_result_render_writes_them(rows):
    sha256s, urls = PlainKeys(), PlainKeys()
    expected = []
    for index, (is_digest, ref, digest) in enumerate(rows):
        column = sha256s if is_digest else urls
        key = digest if is_digest else f"https://web.example/{digest}?q={ref or ''}"
        column.indexes.append(index)
        column.refs.append(ref)
        column.keys.append(key)
        if not is_digest:
            column.hosts.append("web.example")
        item = Item(index, ref, key) if is_digest else Item(index, ref, url=key, url_host="web.example")
        expected.append(result_render(ItemResult(item, Decision.UNREGISTERED, Reason.NO_MATCH)))
    decided = DecidedBatch(size=len(rows), results=[], sha256s=sha256s, urls=urls)
    assert results_render(decided) == orjson.dumps(expected)


@pytest.mark.django_db
def test_the_plain_results_are_written_while_the_lookups_are_in_flight_and_read_the_same(studio):
    from django.db import connection

    from registry.decisions.batch import batch_decide
    from registry.decisions.parse import parse_check_request
    from registry.decisions.render import plain_parts_render
    from registry.services.references import Content, contents_add
    from registry.services.works import do_work_register
    from tests.conftest import OPERATOR

    work = do_work_register(acting=OPERATOR, organization=studio, external_ref="P-1", title="Cel",
                            urls=["https://cdn.aozora.example/cel/1.png"])
    contents_add(contents=[(work.pk, Content(sha256="ab" * 32, phash=None))])
    raw = [{"ref": "mine", "sha256": "ab" * 32}, {"sha256": "cd" * 32},
           {"ref": "u", "url": "https://cdn.aozora.example/cel/1.png"}, {"url": "https://web.example/x.png"},
           {"identifier": "isbn:978-4-04-102622-9"}]
    terms = parse_check_request(requester=studio, purpose="train-ai")
    batch = batch_parse(raw)
    in_flight = []

    def meanwhile() -> list[bytes]:
        if connection.vendor == "postgresql":  # the lookups went out and their rows are not read yet
            in_flight.append(connection.connection.pgconn.pipeline_status != 0)
        return plain_parts_render(batch)

    overlapped = batch_decide(terms, batch, meanwhile=meanwhile)
    plain = batch_decide(terms, batch_parse(raw))
    if connection.vendor == "postgresql":
        assert in_flight == [True] and overlapped.plain_parts is not None
    assert results_render(overlapped) == results_render(plain)
    results = orjson.loads(results_render(overlapped))
    assert [r["decision"] for r in results] == ["not_permitted", "unregistered", "not_permitted", "unregistered",
                                                "unregistered"]
