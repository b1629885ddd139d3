"""Kyoka's client: ask before you ingest; nothing found, and any error, is not permission.

    from kyoka import Client
    client = Client("https://kyoka.example", "kyoka_...")
    outcome = client.check(["https://example.com/a.png", {"sha256": "…"}], purpose="train-genai")
    kept = list(client.filter_permitted(rows, key=lambda r: r["url"], purpose="train-genai"))
"""

from kyoka.client import Client, Decision, Outcome, item_for
from kyoka.errors import BadResponse, BadSignature, KyokaError, RegistryUnavailable, SnapshotExpired, SnapshotMissing
from kyoka.integrations import batch_filter, partition_filter
from kyoka.snapshot import Snapshot

__version__ = "0.1.0"


def __getattr__(name: str):
    if name == "KyokaRule":  # imported on demand: datadiligence has import-time side effects
        from kyoka.datadiligence_rule import KyokaRule

        return KyokaRule
    raise AttributeError(name)


def filter_permitted(iterable, *, purpose: str, key=None, url: str | None = None, api_key: str | None = None,
                     **options):
    """Yield only the permitted entries (see `Client.filter_permitted`)."""
    offline = options.get("offline", False)
    client = Client(url, api_key) if not offline else Client(url, api_key or "")
    try:
        yield from client.filter_permitted(iterable, purpose=purpose, key=key, **options)
    finally:
        client.close()


def is_permitted(value, *, purpose: str, url: str | None = None, api_key: str | None = None, **terms) -> bool:
    """One item: True only for a verified `permitted`; any failure is False."""
    with Client(url, api_key) as client:
        return client.is_permitted(value, purpose=purpose, **terms)


__all__ = [
    "BadResponse", "BadSignature", "Client", "Decision", "KyokaError", "KyokaRule", "Outcome", "RegistryUnavailable",
    "Snapshot", "SnapshotExpired", "SnapshotMissing", "batch_filter", "filter_permitted", "is_permitted",
    "item_for", "partition_filter",
]
