"""The library inside pipelines: Client, filter_permitted, is_permitted, datadiligence, datasets, Dask."""

from __future__ import annotations

import hashlib

import kyoka
import pytest
from kyoka import Client, Snapshot

from tests.clients.stub import StubRegistry
from tests.factories import make_image_bytes

GRANTED = "https://cdn.lib.test/granted.png"
REFUSED = "https://cdn.lib.test/refused.png"
UNKNOWN = "https://nobody.example/x.png"


@pytest.fixture
def library_world(kyoka_server):
    from django.utils import timezone

    from registry.models import VerifiedHost

    VerifiedHost.objects.create(organization=kyoka_server.studio, host="cdn.lib.test", method="reviewer",
                                verified_at=timezone.now())
    kyoka_server.grant(kyoka_server.work(urls=[GRANTED], image_seed=201))
    kyoka_server.work(urls=[REFUSED])
    return kyoka_server


def test_check_filter_permitted_and_is_permitted(library_world):
    r = library_world
    digest = hashlib.sha256(make_image_bytes(201)).hexdigest()
    with Client(r.url, r.key) as client:
        outcome = client.check([GRANTED, REFUSED, UNKNOWN, {"sha256": digest}], purpose="train-genai")
        assert [d.decision for d in outcome.decisions] == ["permitted", "not_permitted", "unregistered", "permitted"]
        assert outcome.decisions[0].proof and outcome.decisions[0].checked == {"url": GRANTED}
        rows = [{"id": n, "url": u} for n, u in enumerate([UNKNOWN, GRANTED, REFUSED, GRANTED])]
        kept = list(client.filter_permitted(rows, key=lambda row: row["url"], purpose="train-genai"))
        assert [row["id"] for row in kept] == [1, 3]
    assert kyoka.is_permitted(GRANTED, purpose="train-ai", url=r.url, api_key=r.key) is True
    assert kyoka.is_permitted(UNKNOWN, purpose="train-ai", url=r.url, api_key=r.key) is False
    assert kyoka.is_permitted(GRANTED, purpose="search", url=r.url, api_key=r.key) is False
    assert list(kyoka.filter_permitted([REFUSED, GRANTED], purpose="train-ai", url=r.url, api_key=r.key)) == [GRANTED]


def test_the_datadiligence_rule_fails_closed_where_datadiligence_fails_open(library_world):
    dd = pytest.importorskip("datadiligence")
    from kyoka import KyokaRule

    evaluator = dd.Evaluator()
    evaluator.add_rule(KyokaRule(purpose="train-genai", url=library_world.url, key=library_world.key))
    assert evaluator.is_allowed(url=GRANTED) is True
    assert evaluator.is_allowed(url=UNKNOWN) is False

    preprocess = dd.evaluators.PreprocessEvaluator()
    preprocess.rules = []  # no Spawning key here: its rule would allow everything it cannot ask about
    preprocess.add_rule(KyokaRule(purpose="train-genai", url=library_world.url, key=library_world.key))
    assert preprocess.filter_allowed(urls=[UNKNOWN, GRANTED, REFUSED]) == [GRANTED]

    with StubRegistry() as stub:
        stub.die_after = 0  # a registry that never answers
        closed = dd.Evaluator()
        closed.add_rule(KyokaRule(purpose="train-genai", client=Client(stub.url, "k", max_retries=0)))
        assert closed.is_allowed(url=GRANTED) is False


def test_hugging_face_datasets_batched_filter(library_world):
    datasets = pytest.importorskip("datasets")
    dataset = datasets.Dataset.from_dict({"url": [UNKNOWN, GRANTED, REFUSED, GRANTED], "n": [0, 1, 2, 3]})

    kept = dataset.filter(kyoka.batch_filter(purpose="train-genai", column="url", url=library_world.url,
                                             key=library_world.key), batched=True, batch_size=3)

    assert kept["n"] == [1, 3]


def test_dask_map_partitions_with_the_snapshot_shipped_to_the_workers(library_world, tmp_path):
    dd = pytest.importorskip("dask.dataframe")
    import pandas

    snapshot, _ = Snapshot.sync(Client(library_world.url, library_world.key), purpose="train-genai",
                                directory=tmp_path)
    frame = dd.from_pandas(pandas.DataFrame({"url": [UNKNOWN, GRANTED, REFUSED, GRANTED] * 5, "n": range(20)}),
                           npartitions=4)
    documents = snapshot.chain_documents()  # plain JSON: what travels to the workers

    kept = frame.map_partitions(kyoka.partition_filter, documents, column="url", meta=frame._meta).compute(
        scheduler="processes")

    assert sorted(kept["n"]) == [n for n in range(20) if n % 4 in (1, 3)]
