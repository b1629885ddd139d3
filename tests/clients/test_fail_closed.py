"""Whatever goes wrong, nothing unanswered is permitted and the exit code says so."""

from __future__ import annotations

import socket

import pytest
from kyoka import BadSignature, Client

from tests.clients.conftest import read_jsonl
from tests.clients.stub import StubRegistry

URLS = [f"https://img.example.net/{n}.jpg" for n in range(50)]


@pytest.fixture
def stub():
    with StubRegistry() as registry:
        yield registry


def test_the_registry_stopping_mid_run_exits_2_and_leaves_the_rest_not_permitted(stub, run_kyoka, tmp_path):
    stub.die_after = 2
    (tmp_path / "urls.txt").write_text("\n".join(URLS) + "\n")

    result = run_kyoka("check", "@urls.txt", "--purpose", "tdm", "--batch-size", "10", "--concurrency", "1",
                       "--retries", "1", "--out", "d.jsonl", url=stub.url, key="k")

    assert result.returncode == 2, result.stderr
    rows = read_jsonl(tmp_path / "d.jsonl")
    assert [r["ref"] for r in rows] == URLS  # every item is accounted for, in order
    assert sum(r["permitted"] for r in rows) == 20  # the two answered batches
    assert all(not r["permitted"] and r["decision"] == "error" for r in rows[20:])


def test_an_unreachable_registry_exits_2_with_nothing_permitted(run_kyoka, tmp_path):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    result = run_kyoka("check", *URLS[:3], "--purpose", "tdm", "--retries", "1", "--out", "d.jsonl",
                       url=f"http://127.0.0.1:{port}", key="k")
    assert result.returncode == 2
    assert [r["permitted"] for r in read_jsonl(tmp_path / "d.jsonl")] == [False, False, False]


def test_a_tampered_receipt_is_refused(stub, run_kyoka, tmp_path):
    stub.permitted = lambda item: False
    stub.tamper = True  # the body is changed after it was signed: a forged "permitted"

    result = run_kyoka("check", *URLS[:5], "--purpose", "tdm", "--out", "d.jsonl", "--receipts", "r",
                       url=stub.url, key="k")

    assert result.returncode == 2
    assert "BadSignature" in result.stderr
    assert not any(r["permitted"] for r in read_jsonl(tmp_path / "d.jsonl"))
    assert not list((tmp_path / "r").glob("*.jws"))  # an unverified body is no receipt


def test_a_receipt_signed_by_an_unknown_key_is_refused_after_one_refetch(stub):
    other = StubRegistry()
    stub.sign = other.sign  # signatures by a key the JWKS never publishes
    client = Client(stub.url, "k", max_retries=0)

    outcome = client.check(URLS[:2], purpose="tdm")

    assert not any(d.permitted for d in outcome.decisions) and "BadSignature" in outcome.errors[0]
    # The first fetch, then exactly one more on meeting the unknown kid.
    assert [path for _, path, _ in stub.requests if "jwks" in path] == ["/.well-known/jwks.json"] * 2
    with pytest.raises(BadSignature, match="unknown key"):
        client.verify(b"{}", other.sign(b"{}"))


def test_429_with_retry_after_is_honoured_then_answered(stub, run_kyoka, tmp_path):
    stub.too_many_first = 2
    stub.retry_after = "1"

    result = run_kyoka("check", *URLS[:3], "--purpose", "tdm", "--out", "d.jsonl", url=stub.url, key="k")

    assert result.returncode == 0, result.stderr
    times = [t for t, path, _ in stub.requests if path == "/api/v1/checks"]
    assert len(times) == 3
    assert times[1] - times[0] >= 0.95 and times[2] - times[1] >= 0.95
    assert all(r["permitted"] for r in read_jsonl(tmp_path / "d.jsonl"))


def test_a_retry_after_longer_than_the_client_will_wait_fails_closed(stub):
    stub.too_many_first = 1
    stub.retry_after = "3600"
    outcome = Client(stub.url, "k").check(URLS[:2], purpose="tdm")
    assert outcome.errors and "Retry-After" in outcome.errors[0]
    assert not any(d.permitted for d in outcome.decisions)


def test_answers_that_do_not_line_up_with_the_items_are_refused(stub):
    original = stub.handle_check

    def drop_one(handler, payload):
        payload["items"] = payload["items"][:-1]
        original(handler, payload)

    stub.handle_check = drop_one
    outcome = Client(stub.url, "k").check(URLS[:3], purpose="tdm")
    assert outcome.errors and not any(d.permitted for d in outcome.decisions)
    assert len(outcome.decisions) == 3
