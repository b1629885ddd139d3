"""Kyoka inside the tools pipelines already use: datadiligence, Hugging Face datasets, Dask, Spark.

All of them fail closed: an entry is kept only on a verified `permitted`.

datadiligence's evaluators skip a rule that is not ready and its Spawning rule allows everything
when it has no key or no answer. `KyokaRule` is always ready (so it is always consulted) and
answers False for every URL without a verified permission:

    import datadiligence as dd
    evaluator = dd.Evaluator()          # or dd.get_evaluator("preprocess")
    evaluator.add_rule(KyokaRule(purpose="train-genai"))
    allowed = evaluator.is_allowed(url="https://example.com/a.png")

Hugging Face datasets (batched map of a column to a keep-mask):

    dataset = dataset.filter(kyoka.batch_filter(purpose="train-genai", column="url"), batched=True)

Dask and Spark: ship the snapshot to the workers (a broadcast join) and filter each partition
offline with `partition_filter`; see the README for `map_partitions` and `mapInPandas`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from kyoka.client import Client
from kyoka.errors import KyokaError


def batch_filter(*, purpose: str, column: str = "url", kind: str | None = None, url: str | None = None,
                 key: str | None = None, territory: str | None = None, context: str | None = None,
                 offline: bool = False, snapshot_dir: str | Path | None = None,
                 client: Client | None = None) -> Callable[[dict[str, list[Any]]], list[bool]]:
    """A function for `Dataset.filter(..., batched=True)`: one keep flag per row of the batch."""
    kind = kind or (column if column in ("url", "sha256", "identifier") else None)
    holder: dict[str, Any] = {}

    def keep(batch: dict[str, list[Any]]) -> list[bool]:
        values = [{kind: "" if v is None else str(v)} if kind else v for v in batch[column]]
        try:
            if offline:
                from kyoka.snapshot import Snapshot

                snapshot = holder.get("snapshot") or Snapshot.load(
                    purpose=purpose, territory=territory, context=context, directory=snapshot_dir)
                holder["snapshot"] = snapshot
                return [snapshot.decide(v).permitted for v in values]
            active = client or holder.setdefault("client", Client(url, key))
            outcome = active.check(values, purpose=purpose, territory=territory, context=context)
            return [d.permitted for d in outcome.decisions]
        except (KyokaError, OSError, ValueError):
            return [False] * len(values)

    return keep


def partition_filter(partition, snapshot_document: dict[str, Any] | list[dict[str, Any]], *, column: str = "url",
                     kind: str | None = None):
    """Keep the permitted rows of a pandas DataFrame, deciding from a (broadcast) snapshot document.

    `snapshot_document` is the verified chain from `Snapshot.load(...).chain_documents()`; each worker
    rebuilds the lookup once per partition, so nothing but plain JSON travels to the workers.
    """
    from kyoka.snapshot import Snapshot

    documents = snapshot_document if isinstance(snapshot_document, list) else [snapshot_document]
    snapshot = Snapshot(documents)
    kind = kind or (column if column in ("url", "sha256", "identifier") else None)
    mask = [snapshot.decide({kind: "" if v is None else str(v)} if kind else v).permitted for v in partition[column]]
    return partition[mask]
