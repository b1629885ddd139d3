"""Licence snapshots through the client: synced, verified, incremental; offline equals online; expiry refuses."""

from __future__ import annotations

import hashlib
import json
import time
from datetime import timedelta

import pytest
from django.utils import timezone
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from kyoka import BadSignature, Client, Snapshot, SnapshotExpired

from registry.models import VerifiedHost
from registry.services.grants import do_grant_revoke
from tests.conftest import OPERATOR
from tests.factories import make_image_bytes

HOST, MIXED, UNPROVEN = "cdn.aozora.test", "mixed.aozora.test", "elsewhere.test"


@pytest.fixture
def world(kyoka_server):
    """Grants of every shape, and the keys a trainer's dataset would hold around them."""
    for host in (HOST, MIXED):
        VerifiedHost.objects.create(organization=kyoka_server.studio, host=host, method="reviewer",
                                    verified_at=timezone.now())
    r = kyoka_server
    r.grant(r.work(urls=[f"https://{HOST}/a/1.png"], identifiers=["isbn:9784041026229"], image_seed=101))
    r.grant(r.work(urls=[f"https://{HOST}/open/*"]))
    r.work(urls=[f"https://{HOST}/closed/x.png"], image_seed=102)
    r.grant(r.work(image_seed=103), purposes=["search"])
    r.grant(r.work(urls=[f"https://{UNPROVEN}/p.png"], image_seed=104))
    r.grant(r.work(urls=[f"https://{MIXED}/*"]))
    r.work(urls=[f"https://{MIXED}/secret.png"])
    r.grant(r.work(image_seed=105), territories=["JP"])
    digests = [hashlib.sha256(make_image_bytes(seed)).hexdigest() for seed in range(101, 107)]
    return {
        "urls": [f"https://{HOST}/a/1.png", "HTTPS://CDN.Aozora.test:443/a/./1.png#top", f"https://{HOST}/a/%31.png",
                 f"https://{HOST}/open/", f"https://{HOST}/open/deep/x.jpg?size=2", f"https://{HOST}/closed/x.png",
                 f"https://{HOST}/closed/y.png", f"https://{UNPROVEN}/p.png", f"https://{MIXED}/any.png",
                 f"https://{MIXED}/secret.png", "https://nobody.example/x.png", f"http://{HOST}/a/1.png",
                 f"https://{HOST}/a/1.png?", f"https://{HOST}//a/1.png", f"https://{HOST}/OPEN/x"],
        "digests": digests,
        "identifiers": ["isbn:9784041026229", "isbn:978-4-04-102622-9", "ISBN:9784041026229", "isbn:9780306406157"],
    }


def key_strategy(world):
    path = st.text(alphabet="abcxyz0123456789-._~/%", min_size=0, max_size=12)
    return st.one_of(
        st.sampled_from(world["urls"]).map(lambda u: {"url": u}),
        st.tuples(st.sampled_from([f"https://{HOST}/open/", f"https://{HOST}/", f"https://{MIXED}/",
                                   "https://nobody.example/"]), path).map(lambda t: {"url": t[0] + t[1]}),
        st.sampled_from(world["digests"]).map(lambda d: {"sha256": d}),
        st.sampled_from(world["digests"]).map(lambda d: {"sha256": d.upper()}),
        st.binary(min_size=1, max_size=8).map(lambda b: {"sha256": hashlib.sha256(b).hexdigest()}),
        st.sampled_from(world["identifiers"]).map(lambda i: {"identifier": i}),
    )


def test_offline_answers_equal_online_answers_for_every_key(kyoka_server, world, tmp_path):
    client = Client(kyoka_server.url, kyoka_server.key)
    snapshot, kind = Snapshot.sync(client, purpose="train-genai", directory=tmp_path)
    assert kind == "full"
    assert snapshot.info.key_count >= 4

    @settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
    @given(st.lists(key_strategy(world), min_size=1, max_size=25))
    # Found by this test: a percent escape the registry keeps (%00) under a permitted pattern.
    @example([{"url": f"https://{HOST}/open/%00"}, {"url": f"https://{HOST}/open/%C3%A9x"}])
    def offline_equals_online(keys):
        online = client.check(keys, purpose="train-genai")
        assert not online.errors
        for key, answer in zip(keys, online.decisions, strict=True):
            offline = snapshot.decide(key).permitted
            # The offline filter's fast loop says the same, told the kind or guessing it.
            kind, value = next(iter(key.items()))
            assert bool(snapshot.matcher(kind)(value)) == bool(snapshot.matcher()(value)) == offline, key
            assert offline == answer.permitted, key

    offline_equals_online()
    # The fixed keys alone, so the interesting ones are always asked.
    fixed = [{"url": u} for u in world["urls"]] + [{"sha256": d} for d in world["digests"]] + [
        {"identifier": i} for i in world["identifiers"]]
    online = client.check(fixed, purpose="train-genai")
    offline = [snapshot.decide(k).permitted for k in fixed]
    assert offline == [d.permitted for d in online.decisions]
    # Under MIXED's pattern one exact URL is not granted: the snapshot lists it as an exception.
    assert offline[world["urls"].index(f"https://{MIXED}/any.png")] is True
    assert offline[world["urls"].index(f"https://{MIXED}/secret.png")] is False
    assert sum(d.permitted for d in online.decisions) >= 6  # the test is not vacuous


def test_sync_applies_deltas_and_a_revocation_leaves_the_next_snapshot(kyoka_server, run_kyoka, tmp_path):
    work = kyoka_server.work(image_seed=110)
    grant = kyoka_server.grant(work)
    kyoka_server.grant(kyoka_server.work(image_seed=111))
    digest = hashlib.sha256(make_image_bytes(110)).hexdigest()
    client = Client(kyoka_server.url, kyoka_server.key)
    first, kind = Snapshot.sync(client, purpose="train-ai", directory=tmp_path)
    assert kind == "full" and first.decide({"sha256": digest}).permitted
    # A permitted answer carries the snapshot's id and signature as its proof.
    proof = first.decide({"sha256": digest})
    assert proof.proof == first.info.snapshot_id and proof.signature.count(".") == 2

    do_grant_revoke(acting=OPERATOR, grant=grant)
    second, kind = Snapshot.sync(client, purpose="train-ai", directory=tmp_path)

    assert kind == "delta"
    assert not second.decide({"sha256": digest}).permitted
    assert second.info.key_count == 1
    reloaded = Snapshot.load(purpose="train-ai", directory=tmp_path)
    assert reloaded.info.snapshot_id == second.info.snapshot_id

    result = run_kyoka("sync", "--purpose", "train-ai", url=kyoka_server.url, key=kyoka_server.key)
    assert result.returncode == 0 and "full snapshot" in result.stdout  # a new directory: a full one


def test_an_expired_snapshot_refuses_to_decide(kyoka_server, run_kyoka, tmp_path):
    kyoka_server.grant(kyoka_server.work(image_seed=120), valid_until=timezone.now() + timedelta(seconds=10))
    digest = hashlib.sha256(make_image_bytes(120)).hexdigest()
    synced = run_kyoka("sync", "--purpose", "train-ai", url=kyoka_server.url, key=kyoka_server.key)
    assert synced.returncode == 0, synced.stderr
    (tmp_path / "rows.csv").write_text(f"sha256\n{digest}\n")
    fresh = run_kyoka("filter", "rows.csv", "--column", "sha256", "--purpose", "train-ai", "--offline",
                      "--out", "kept.csv", url="http://127.0.0.1:9", key="")
    assert fresh.returncode == 0, fresh.stderr  # no network needed while it is valid
    assert digest in (tmp_path / "kept.csv").read_text()

    snapshot = Snapshot.load(purpose="train-ai", directory=tmp_path / "snapshots")
    time.sleep(max(0.0, snapshot._valid_until - time.time()) + 0.2)

    with pytest.raises(SnapshotExpired):
        snapshot.decide({"sha256": digest})
    stale = run_kyoka("filter", "rows.csv", "--column", "sha256", "--purpose", "train-ai", "--offline",
                      "--out", "stale.csv", url="http://127.0.0.1:9", key="")
    assert stale.returncode == 2 and "expired" in stale.stderr
    assert not (tmp_path / "stale.csv").exists()


def test_a_snapshot_edited_on_disk_is_refused(kyoka_server, tmp_path):
    kyoka_server.grant(kyoka_server.work(image_seed=130))
    snapshot, _ = Snapshot.sync(Client(kyoka_server.url, kyoka_server.key), purpose="tdm", directory=tmp_path)
    body_file = snapshot.folder / f"{snapshot.info.snapshot_id}.json"
    document = json.loads(body_file.read_bytes())
    document["keys"]["sha256"]["0" * 64] = list(document["grants"])
    document["key_count"] += 1
    body_file.write_text(json.dumps(document))

    with pytest.raises(BadSignature):
        Snapshot.load(purpose="tdm", directory=tmp_path)
