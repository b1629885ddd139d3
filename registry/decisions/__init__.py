"""The check: parse → load → rules → render, and `check_run`, the one entry point.

`registry.decisions.vocabulary` declares the words; `parse` the limits and keys; `load` the few
set-based queries; `rules` the pure decision; `render` the signed body; `batch` keeps a check's
plain digests and URLs as columns, so the unregistered majority skips all of that but the
template it is rendered from. The API and the portal's console both call `check_run`, so they
share every limit and rule.
"""

from __future__ import annotations

from registry.decisions.load import facts_load
from registry.decisions.parse import CheckRequest, Item
from registry.decisions.rules import ItemResult, decide_items


def decide(request: CheckRequest, items: list[Item]) -> list[ItemResult]:
    """Answer every item, in order. Nothing found is `unregistered`, never permitted."""
    return decide_items(request, items, facts_load(items))
